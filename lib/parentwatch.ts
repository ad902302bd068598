// Notice that the process that started bootserve went away, and say so once.
//
// Why: `npx bootserve` runs npm → `sh -c bootserve ...` → node. A SIGTERM to npm is forwarded
// to the shell only; dash neither forwards it nor execs its last command, so the shell dies and
// bootserve is re-parented (to PID 1 or a subreaper) and keeps serving, holding its ports
// (npm/cli#5776). No Node API asks the kernel for a signal when the parent dies (Linux
// PR_SET_PDEATHSIG), so the parent id is polled: a getppid() a second costs nothing.
//
// Only a process npm started is watched (npm marks its children's environment with npm_command):
// `nohup bootserve &` or `bootserve & disown` is meant to outlive its shell. A process whose
// parent is already PID 1 (systemd, a container's init) has nothing to watch either.

export interface ParentWatchOptions {
  /** The process's environment: watched only when npm started it. */
  env: NodeJS.ProcessEnv;
  /** The current parent pid (process.ppid reads it afresh on every access). */
  ppid: () => number;
  /** Called once, with the parent pid that went away. */
  onGone: (formerParent: number) => void;
  everyMs?: number;
  /** Injected for tests. */
  setInterval?: (fn: () => void, ms: number) => { unref?: () => void };
  clearInterval?: (timer: unknown) => void;
}

export type ParentWatch = { kind: 'watching'; parent: number; stop: () => void } | { kind: 'not-watching'; reason: string };

/** Started by `npx`, `npm exec` or `npm start`: npm's environment variables are there. */
export const startedByNpm = (env: NodeJS.ProcessEnv) => env.npm_command !== undefined || env.npm_lifecycle_event !== undefined;

export function watchParent(options: ParentWatchOptions): ParentWatch {
  if (!startedByNpm(options.env)) return { kind: 'not-watching', reason: 'not started by npm' };
  const parent = options.ppid();
  if (parent <= 1) return { kind: 'not-watching', reason: `started by pid ${parent}` };
  const every = options.setInterval ?? ((fn: () => void, ms: number) => setInterval(fn, ms));
  const clear = options.clearInterval ?? ((timer: unknown) => clearInterval(timer as NodeJS.Timeout));
  const timer = every(() => {
    if (options.ppid() === parent) return;
    clear(timer);
    options.onGone(parent);
  }, options.everyMs ?? 1000);
  // The watch alone must not keep the process alive once everything else has stopped.
  timer.unref?.();
  return { kind: 'watching', parent, stop: () => clear(timer) };
}
