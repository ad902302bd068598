// The bootserve process: parse the command line, check the directory, build and start the
// services (app.ts), print the banner, and stop gracefully on SIGTERM or SIGINT.
import { readFileSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { bootMenuFor, buildApp, ConfigError } from './app.js';
import { grubMenuFor } from './netboot/catalog.js';
import { parseArgs, unknownVariables, usage, UsageError } from './cli.js';
import { cutTransfersLines } from './interrupted.js';
import { servedFromOutside } from './netboot/ipxe.js';
import { watchParent } from './parentwatch.js';
import { becomeUser, lookupAccount, planPrivileges, settlePlan, type ProcessIds } from './privileges.js';
import { BindError } from './net/bind.js';
import { createLiveView } from './observe/live.js';
import { createLogger } from './observe/log.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Exit with a one-line message: 2 for a bad invocation, 1 for a bad environment. */
function fail(message: string, code: 1 | 2): never {
  process.stderr.write(`bootserve: ${message}${code === 2 ? " (see 'bootserve --help')" : ''}\n`);
  process.exit(code);
}

async function realDirectory(dir: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch {
    return fail(`directory not found: ${dir}`, 1);
  }
  if (!(await stat(real)).isDirectory()) fail(`not a directory: ${dir}`, 1);
  return real;
}

/**
 * The descriptor systemd passed us (socket activation: LISTEN_PID is us, LISTEN_FDS ≥ 1), or
 * undefined. The variables are removed so that nothing we start inherits them.
 */
function activationFd(note: (message: string) => void): number | undefined {
  const { LISTEN_PID, LISTEN_FDS } = process.env;
  delete process.env.LISTEN_PID;
  delete process.env.LISTEN_FDS;
  delete process.env.LISTEN_FDNAMES;
  if (LISTEN_PID !== String(process.pid) || !(Number(LISTEN_FDS) >= 1)) return undefined;
  const more = Number(LISTEN_FDS) > 1 ? `; ${Number(LISTEN_FDS) - 1} more socket(s) ignored` : '';
  note(`socket activation: serving on the socket systemd passed (fd 3); --port and --host are not used${more}`);
  return 3;
}

async function main(): Promise<void> {
  let invocation;
  try {
    invocation = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) fail(err.message, 2);
    throw err;
  }
  if (invocation.kind === 'help') return void process.stdout.write(usage() + '\n');
  if (invocation.kind === 'version') return void process.stdout.write(VERSION + '\n');
  const { config } = invocation;
  const root = await realDirectory(config.root);
  const live = createLiveView(process.stdout, !config.quiet && config.logFormat === 'text');
  const logger = createLogger(config.logFormat, config.quiet, live.print);
  for (const warning of unknownVariables(process.env)) logger.error(warning);
  if (invocation.kind === 'print-menu') {
    const warnLine = (m: string) => logger.error(m);
    return void process.stdout.write(
      `${await bootMenuFor(root, config, warnLine)()}` +
      `\n# ---- grub/grub.cfg (the Secure Boot path) ----\n${await grubMenuFor(root, config, warnLine)}`,
    );
  }

  // Who runs once the ports are bound (started as root: nobody, or --user): decided before binding.
  const privileges = process.getuid
    ? settlePlan(planPrivileges(config.user, process.getuid(), lookupAccount), root)
    : ({ kind: 'keep', note: undefined } as const);
  if (privileges.kind === 'refused') fail(privileges.message, 1);
  let app;
  try {
    app = buildApp({ config, root, version: VERSION, logger, activationFd: activationFd((m) => logger.info(m)) });
    await app.start();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof BindError) fail(err.message, 1);
    throw err;
  }
  // Every port is bound: become that user for good. The menu's module is loaded first, while the
  // code's folder is surely readable (a checkout under a 0700 home).
  if (privileges.kind === 'drop') await import('./netboot/bootmenu.js');
  const became = becomeUser(
    privileges,
    root,
    [...(app.ipxe ? servedFromOutside(app.ipxe) : []), ...(app.boot?.outside() ?? [])],
    process as ProcessIds,
  );
  if (became.kind === 'refused') fail(became.message, 1);
  if (became.note) (became.note.startsWith('warning:') ? logger.error : logger.info)(became.note);
  for (const line of app.banner()) (line.level === 'warn' ? logger.error : logger.info)(line.text);
  live.start(app.transfers);

  const running = app;
  const stop = (signal: string) => {
    if (running.shuttingDown()) {
      for (const line of cutTransfersLines(signal, running.transfers.active.values())) logger.error(line);
      process.stdout.write('', () => process.exit(1));
      setTimeout(() => process.exit(1), 500).unref();
      return;
    }
    logger.info(`${signal}: finishing transfers (up to ${config.shutdownGraceMs / 1000}s), then exiting`);
    live.stop();
    // Resolves once every transfer is logged; the empty write calls back once the log lines
    // before it are flushed (stdout is asynchronous on some pipes and terminals), and the timer
    // exits anyway should stdout never drain.
    const exit = () => process.exit(0);
    void running.shutdown(config.shutdownGraceMs).then(() => {
      process.stdout.write('', exit);
      setTimeout(exit, 1000);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // npx and npm exec pass SIGTERM to their shell only (npm/cli#5776): stop when the parent goes.
  watchParent({ env: process.env, ppid: () => process.ppid, onGone: (pid) => stop(`parent process (pid ${pid}) went away`) });
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err), 1));
