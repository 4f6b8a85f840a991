import type { StepStatus, TestStep } from '../connector';

/**
 * Collects test steps in order. After the first failure every later step is reported as skipped,
 * so the answer always lists the same steps and shows where it stopped.
 */
export class TestSteps {
  readonly steps: TestStep[] = [];
  private stopped = false;

  constructor(private readonly scrub: (message: string) => string) {}

  get failed(): boolean {
    return this.stopped;
  }

  add(name: string, status: StepStatus, message: string, durationMs: number, code?: string): void {
    if (status === 'failed') this.stopped = true;
    this.steps.push({
      name,
      status,
      message: this.scrub(message),
      duration_ms: Math.max(0, Math.round(durationMs)),
      ...(code && { code }),
    });
  }

  /** Marks the remaining steps as skipped after a failure. */
  skip(names: string[]): TestStep[] {
    for (const name of names.slice(this.steps.length))
      this.steps.push({
        name,
        status: 'skipped',
        message: 'not run: an earlier step failed',
        duration_ms: 0,
      });
    return this.steps;
  }
}
