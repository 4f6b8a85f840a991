/** `npm run start:worker`: a worker process (sync, test and sync-all jobs). Run as many as you like. */
import { run } from '../src/main';

void run('worker');
