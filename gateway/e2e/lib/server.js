// Starts the real `switchboard` binary on a free loopback port with its own
// TOML config, waits for GET /readyz, and stops it at the end.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, mkdirSync, createWriteStream, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = resolve(here, '../../../target/e2e-artifacts');
export const BINARY = resolve(here, '..', process.env.SWITCHBOARD_BIN || '../../target/debug/switchboard');

export function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

const q = (value) => JSON.stringify(value);

/** The key test web sites sign their customers' identities with. */
export const IDENTITY_SECRET = 'e2e-identity-secret-0123456789abcdef0123';
const list = (values) => `[${values.map(q).join(', ')}]`;

/** The agents every suite uses; passwords are plain (test config only). */
export const AGENTS = {
  alice: { id: 'alice', name: 'Alice Martin', username: 'alice', password: 'alice-pass', queues: ['sales', 'support'], max_chats: 3, roles: ['agent', 'supervisor'] },
  bob: { id: 'bob', name: 'Bob Chen', username: 'bob', password: 'bob-pass', queues: ['sales'], max_chats: 3, roles: ['agent'] },
  carol: { id: 'carol', name: 'Carol Diaz', username: 'carol', password: 'carol-pass', queues: ['sales'], max_chats: 3, roles: ['agent'] },
};

function configToml({ port, dir, rona = 5000, autoWrapUp = 10000, queueStatus = 200, allowedOrigins = [], tokenTtl = 43200 }) {
  const agents = Object.values(AGENTS).map((a) => `
[[agents]]
id = ${q(a.id)}
name = ${q(a.name)}
username = ${q(a.username)}
password = ${q(a.password)}
queues = ${list(a.queues)}
max_chats = ${a.max_chats}
roles = ${list(a.roles)}
`).join('');
  return `
[server]
listen = "127.0.0.1:${port}"
metrics_listen = "127.0.0.1:0"

[storage]
database_url = ${q(`sqlite://${dir}/switchboard.db`)}

[widget]
identity_secret = ${q(IDENTITY_SECRET)}
allowed_origins = ${list(allowedOrigins)}

[limits]
# A browser on the same machine is not an overloaded node: no shedding.
overload_target_ms = 0

[routing]
rona_timeout_ms = ${rona}
auto_wrap_up_ms = ${autoWrapUp}
default_max_chats = 3
queue_status_interval_ms = ${queueStatus}

[auth]
token_secret = "e2e-token-secret-0123456789abcdef0123456789"
token_ttl_s = ${tokenTtl}

[[queues]]
id = "sales"
name = "Sales"

[[queues]]
id = "support"
name = "Support"
${agents}
[[wrap_up_reasons]]
id = "resolved"
label = "Resolved"

[[wrap_up_reasons]]
id = "follow_up"
label = "Follow-up needed"

[[wrap_up_reasons]]
id = "no_response"
label = "No response from customer"

[wrap_up]
default_reason = "no_response"

[[idle_reasons]]
id = "break"
label = "Break"

[[idle_reasons]]
id = "lunch"
label = "Lunch"

[[templates]]
id = "greeting"
name = "Greeting"
text = "Hello <customerName>, I'm <agentName> from <queueName>. How can I help you today?"

[[templates]]
id = "order_status"
name = "Order status"
text = "Thanks <customerName>, I'm checking order <orderId> for you now."
`;
}

/**
 * @param {string} name  used for the log file name
 * @param {{rona?: number, autoWrapUp?: number, queueStatus?: number, allowedOrigins?: string[], tokenTtl?: number}} [timers]
 *   milliseconds; allowedOrigins: the sites that may embed the widget;
 *   tokenTtl: seconds a token lasts
 */
export async function startServer(name, timers = {}) {
  if (!existsSync(BINARY)) {
    throw new Error(`server binary not found at ${BINARY}: build it with \`cargo build -p switchboard-gateway --bin switchboard\` or set SWITCHBOARD_BIN`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-e2e-'));
  const configPath = join(dir, 'switchboard.toml');
  writeFileSync(configPath, configToml({ port, dir, ...timers }));
  const log = createWriteStream(join(ARTIFACTS, `server-${name}.log`));
  const child = spawn(BINARY, ['--config', configPath], {
    env: { ...process.env, SWITCHBOARD_CONFIG: configPath, RUST_LOG: process.env.RUST_LOG || 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  const exit = new Promise((ok) => child.once('exit', (code, signal) => { exited = { code, signal }; ok(); }));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited) throw new Error(`switchboard exited before ready (${JSON.stringify(exited)}); see ${log.path}`);
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`switchboard not ready within 30 s; see ${log.path}`);
    }
    await new Promise((ok) => setTimeout(ok, 100)); // poll interval while the process starts
  }

  return {
    url,
    port,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}
