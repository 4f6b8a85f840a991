import { fork } from 'node:child_process';

export interface ChildProcess {
  pid: number;
  /** CPU time (user + system) the process has used so far, in µs. */
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

export interface ChildServer extends ChildProcess {
  url: string;
}

/**
 * Starts `script` (a TypeScript entry) in its own Node process and waits for its first IPC
 * message, which says it is ready. One process per server or worker: on two cores, one sharing the
 * load generator's event loop would be measured against its own client. The child answers 'cpu'
 * with `{ cpuMicros }` and stops on SIGTERM (see bench/servers/*).
 */
export async function startChild<Ready>(
  script: string,
  env: Record<string, string>,
  nodeOptions: string[] = [],
): Promise<ChildProcess & { ready: Ready }> {
  const child = fork(script, [], {
    execArgv: ['--import', 'tsx', ...nodeOptions],
    env: { ...process.env, ...env },
    // stdout (request logs) is discarded as a production log shipper would take it away; errors show.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once('message', (message) => resolve(message as Ready));
    child.once('exit', (code) => reject(new Error(`${script} exited with code ${code} before it was ready`)));
  });
  return {
    ready,
    pid: child.pid!,
    cpuMicros: () =>
      new Promise((resolve) => {
        child.once('message', (message) => resolve((message as { cpuMicros: number }).cpuMicros));
        child.send('cpu');
      }),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A server child that reports `{ port }` on loopback once listening. */
export async function startChildServer(
  script: string,
  env: Record<string, string>,
  nodeOptions: string[] = [],
): Promise<ChildServer> {
  const child = await startChild<{ port: number }>(script, env, nodeOptions);
  return { ...child, url: `http://127.0.0.1:${child.ready.port}` };
}
