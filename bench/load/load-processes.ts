import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { WebSocket } from 'undici';

/** A Sluice process the load run started: the real entry point, its log in a file. */
export interface SluiceProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Resident set size now, in bytes (/proc/<pid>/status VmRSS); undefined once it has exited. */
  rss(): Promise<number | undefined>;
  /** CPU time (user + system) used so far, in µs, from /proc/<pid>/stat. */
  cpuMicros(): Promise<number>;
  exited(): boolean;
  /**
   * Forces a full garbage collection through the process's inspector (loopback, ephemeral port),
   * then reads process.memoryUsage(): what it retains, without the sawtooth of RSS between
   * collections. Needs `inspect` at start.
   */
  collectAndMeasure(): Promise<NodeJS.MemoryUsage>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const CLOCK_TICKS = 100;

/**
 * Starts `node --import tsx <script> [...args]` (what `tsx <script>` runs, without tsx's own
 * wrapper process in between, so the PID measured is the one serving) with `env` on top of this
 * process's environment, stdout and stderr appended to `logFile`. A `.js` script (the compiled
 * build in dist/, what production runs) is started without tsx.
 */
export function startSluiceProcess(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string>,
  logFile: string,
  nodeOptions: string[] = [],
): SluiceProcess {
  // The inspector listens on loopback only, on a port the OS picks; it prints its address to stderr.
  nodeOptions = [...nodeOptions, '--inspect=127.0.0.1:0'];
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    const loader = script.endsWith('.js') ? [] : ['--import', 'tsx'];
    child = spawn(process.execPath, [...nodeOptions, ...loader, script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const exit = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  return {
    name,
    pid,
    logFile,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async rss() {
      try {
        const status = await readFile(`/proc/${pid}/status`, 'utf8');
        const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
        return kb ? Number(kb) * 1024 : undefined;
      } catch {
        return undefined;
      }
    },
    async cpuMicros() {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name, which may hold spaces: utime and stime are 14 and 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
    },
    async collectAndMeasure() {
      const address = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(
        await readFile(logFile, 'utf8'),
      )?.[1];
      if (!address) throw new Error(`${name}: no inspector address in ${logFile}`);
      return inspect(address);
    },
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** One inspector session: a full GC, then process.memoryUsage(); bounded by 20 s. */
async function inspect(address: string): Promise<NodeJS.MemoryUsage> {
  const ws = new WebSocket(address);
  const pending = new Map<number, (result: unknown) => void>();
  let nextId = 1;
  const call = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  ws.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      (async () => {
        await new Promise((resolve, reject) => {
          ws.addEventListener('open', resolve);
          ws.addEventListener('error', () => reject(new Error(`inspector at ${address} refused`)));
        });
        await call('HeapProfiler.collectGarbage');
        const evaluated = (await call('Runtime.evaluate', {
          expression: 'JSON.stringify(process.memoryUsage())',
          returnByValue: true,
        })) as { result?: { value?: string } };
        return JSON.parse(evaluated.result?.value ?? 'null') as NodeJS.MemoryUsage;
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`inspector at ${address} did not answer`)), 20_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}

/** A TCP port free on loopback right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `check` every 200 ms until it is true; fails after `timeoutMs`, or at once if `proc` died. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  procs: SluiceProcess[] = [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = procs.find((p) => p.exited());
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what} (log: ${dead.logFile})`);
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface RssSample {
  /** Seconds since the sampler started. */
  t: number;
  phase: string;
  /** Bytes per process name. */
  rss: Record<string, number>;
}

/** Samples every process's RSS every `everyMs`, labelled with the phase the run is in. */
export class RssSampler {
  readonly samples: RssSample[] = [];
  phase = 'before';
  private timer: NodeJS.Timeout | undefined;
  private readonly started = performance.now();

  constructor(
    private readonly procs: SluiceProcess[],
    private readonly everyMs: number,
  ) {}

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async sample(): Promise<void> {
    const rss: Record<string, number> = {};
    for (const p of this.procs) {
      const bytes = await p.rss();
      if (bytes !== undefined) rss[p.name] = bytes;
    }
    this.samples.push({ t: (performance.now() - this.started) / 1000, phase: this.phase, rss });
  }

  of(phase: string, name: string): number[] {
    return this.samples
      .filter((s) => s.phase === phase && s.rss[name] !== undefined)
      .map((s) => s.rss[name]!);
  }
}
