/**
 * Runs at most `limit` tasks at once, started as slots free up (a sliding window, not batches: one
 * slow task does not hold up the rest). The first failure stops new tasks; run() and drain()
 * rethrow it.
 */
export class TaskWindow {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private failure: unknown;
  private failed = false;

  constructor(private readonly limit: number) {}

  async run(task: () => Promise<unknown>): Promise<void> {
    while (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.failed) throw this.failure;
    this.active += 1;
    task()
      .catch((err: unknown) => {
        if (!this.failed) [this.failed, this.failure] = [true, err];
      })
      .finally(() => {
        this.active -= 1;
        this.waiting.shift()?.();
      });
  }

  async drain(): Promise<void> {
    while (this.active > 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.failed) throw this.failure;
  }
}
