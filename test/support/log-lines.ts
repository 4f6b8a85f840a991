/**
 * A process that logs through Sluice's logger to its batched stdout (src/logger.ts), for the
 * logger's tests: `LINES` lines at once, then exits at once with process.exit (`EXIT=now`), crashes
 * on an uncaught exception (`EXIT=crash`), or says `done` on stderr and waits `STAY_MS` before
 * exiting on its own.
 */
import { createLogger } from '../../src/logger';

const logger = createLogger('info');
const lines = Number(process.env.LINES ?? 1);
for (let i = 0; i < lines; i += 1) logger.info({ i }, 'line');
if (process.env.EXIT === 'now') process.exit(0);
if (process.env.EXIT === 'crash') throw new Error('crashed on purpose');
process.stderr.write('done\n');
setTimeout(() => undefined, Number(process.env.STAY_MS ?? 2000));
