/**
 * A real worker process whose connectors are ScriptedConnector doubles, for process-level tests
 * (SIGKILL, SIGTERM, Redis loss). Same entry as `npm run start:worker`, plus the doubles.
 * Usage: tsx test/support/scripted-worker.ts [worker|all|api]
 */
import { run, type Role } from '../../src/main';
import { ScriptedConnector } from './scripted-connector';

const role = (process.argv[2] ?? 'worker') as Role;
void run(role, {
  connectors: ['database', 'api', 'file'].map((t) => new ScriptedConnector(t)),
});
