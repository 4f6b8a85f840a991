import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { DatabaseConnector } from './src/connectors/database/database.connector';
import { Outbound } from './src/connectors/outbound';
import { createLogger } from './src/logger';
let payload = Buffer.alloc(0);
const server = createServer((s) => { s.on('error', () => {}); s.once('data', () => s.end(payload)); });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as { port: number }).port;
const ctx = () => ({ signal: new AbortController().signal, logger: createLogger('silent'), outbound: new Outbound(), timeoutMs: 500 });
for (let i = 0; i < 300; i++) {
  const len = 1 + (i % 40);
  payload = randomBytes(len);
  if (i % 2 === 0) { payload[0] = 'HRDEWGdcCSKZNAT'.charCodeAt(i % 15); if (len > 5) payload.writeInt32BE(4 + (i % 8), 1); }
  console.log(i, payload.toString('hex'));
  const cs = `postgres://u:pw@127.0.0.1:${port}/db?sslmode=disable`;
  const t = Date.now();
  const steps = await new DatabaseConnector().test({ id: 'x', name: 'x', source_type: 'database', connection_string: cs, metadata: { table: 't' }, schema_definition: null }, ctx());
  if (Date.now() - t > 1000) console.log('slow', Date.now() - t, JSON.stringify(steps.filter((s) => s.status === 'failed')));
}
console.log('pg survived');
process.exit(0);
