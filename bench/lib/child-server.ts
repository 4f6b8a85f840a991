import { fork } from 'node:child_process';

export interface ChildServer {
  url: string;
  pid: number;
  /** CPU time (user + system) the server process has used so far, in µs. */
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts `script` (a TypeScript server entry) in its own Node process and waits for it to report
 * its loopback port over IPC. One process per server: on two cores, a server sharing the load
 * generator's event loop would be measured against its own client.
 */
export async function startChildServer(
  script: string,
  env: Record<string, string>,
  nodeOptions: string[] = [],
): Promise<ChildServer> {
  const child = fork(script, [], {
    execArgv: ['--import', 'tsx', ...nodeOptions],
    env: { ...process.env, ...env },
    // stdout (request logs) is discarded as a production log shipper would take it away; errors show.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${script} exited with code ${code} before listening`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
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
