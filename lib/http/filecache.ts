// The open-file cache: a hot request needs no realpath, open, fstat or close, and a small file
// no read either.
//
// An entry is one served file, keyed by its path as requested (the root joined with the decoded
// segments of paths.ts): the open descriptor, the fstat taken when it was opened, and for a
// small file its bytes. Every hit is checked with one synchronous stat of that path, compared
// with the entry's fstat (device, inode, size, mtime, ctime): a rename over the file, a
// truncation or any write, a chmod, a deletion, or a symlink anywhere on the path that now
// leads to another file all fail the check, and the request takes the ordinary path
// (containment in paths.ts, open, fstat) as if the cache were not there. The descriptor pins
// the inode, so its number cannot pass to a new file while the entry lives.
//
// Descriptors are reference counted: the cache holds one reference, each transfer reading the
// file another. Evicting drops the cache's; the descriptor closes when the last one goes, so a
// transfer never loses its file under its feet.
import { close, readFileSync, statSync, type Stats } from 'node:fs';
import { validatorsOf, type Validators } from './conditional.js';
import { contentTypeFor } from './mime.js';
import type { FileLease } from './transfer.js';

/** Files up to this size may keep their bytes in memory: they are sent without a read. */
export const SMALL_FILE = 64 * 1024;
/** Descriptors always left free for whatever else the process opens. */
const SPARE_DESCRIPTORS = 64;
/** An entry not used for this long is closed (so that a deleted file's space is given back). */
const IDLE_MS = 60_000;
/**
 * Bytes are kept only for a file whose ctime is older than this when they are read: a write
 * within the same tick of a coarse file-system clock (up to 2 s on FAT) would leave size, mtime
 * and ctime as they were, and the kept bytes would go stale unnoticed.
 */
const RACY_MS = 2_000;

/** An open regular file: descriptor, its fstat, and what the headers need from it. */
export class OpenFile implements FileLease {
  readonly validators: Validators;
  readonly lastModified: string;
  readonly contentType: string;
  /** The whole file, when small and settled (FileCache.keepBytes). */
  bytes: Buffer | undefined;
  lastUsed = 0;
  private refs = 1;
  /** Settles once the descriptor is closed (after the last release). */
  closed: Promise<void> | undefined;

  constructor(
    readonly fd: number,
    readonly stats: Stats,
    /** Its real path (inside the root, as paths.ts checked): it names the content type. */
    real: string,
  ) {
    this.validators = validatorsOf(stats);
    this.lastModified = new Date(this.validators.lastModified).toUTCString();
    this.contentType = contentTypeFor(real);
  }

  get size(): number {
    return this.stats.size;
  }

  /** One more holder: the cache, or a transfer. */
  retain(): this {
    this.refs++;
    return this;
  }

  /** A holder is done; the last one closes the descriptor (once, never twice). */
  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.closed = new Promise((resolve) => close(this.fd, () => resolve()));
  }

  /** Holders now (for tests and the EMFILE guard). */
  get holders(): number {
    return this.refs;
  }
}

/** Same device, inode, size, mtime and ctime: the same version of the same file. */
export function sameVersion(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

export interface FileCacheOptions {
  /** Files kept open, one descriptor each; 0 keeps none (every request opens its file). */
  files: number;
  /** Bytes of small files' contents kept in memory, over all files; 0 keeps none. */
  bytes: number;
  /** Descriptors the process may open (RLIMIT_NOFILE); unknown: no limit but `files`. */
  descriptorLimit?: number;
  /** Descriptors the rest of the server needs right now (connections and their transfers). */
  othersNeed?: () => number;
  idleMs?: number;
  racyMs?: number;
  /** Wall clock (file timestamps are wall-clock times); tests pass their own. */
  now?: () => number;
}

export class FileCache {
  /** Least recently used first: a hit moves its entry to the end. */
  private readonly entries = new Map<string, OpenFile>();
  private bytesKept = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly idleMs: number;
  private readonly racyMs: number;
  private readonly now: () => number;
  private readonly descriptorLimit: number;
  private readonly othersNeed: () => number;
  hits = 0;
  misses = 0;

  constructor(private readonly limits: FileCacheOptions) {
    this.idleMs = limits.idleMs ?? IDLE_MS;
    this.racyMs = limits.racyMs ?? RACY_MS;
    this.now = limits.now ?? Date.now;
    this.descriptorLimit = limits.descriptorLimit ?? Infinity;
    this.othersNeed = limits.othersNeed ?? (() => 0);
  }

  /**
   * Files the cache may keep open now: its limit, or fewer when connections need the
   * descriptors (so that the cache is never what runs the process out of them).
   */
  private room(): number {
    return Math.min(this.limits.files, this.descriptorLimit - SPARE_DESCRIPTORS - this.othersNeed());
  }

  /** Close the least recently used until at most `room` remain. */
  private fit(room: number): void {
    for (const [path, file] of this.entries) {
      if (this.entries.size <= room) break;
      this.evict(path, file);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get bytesInMemory(): number {
    return this.bytesKept;
  }

  /**
   * The cached file at `path`, if it is still the file the path leads to (one synchronous stat),
   * retained for the caller, who releases it. Undefined: take the ordinary path.
   */
  lookup(path: string): OpenFile | undefined {
    const file = this.entries.get(path);
    if (!file) return undefined;
    this.fit(this.room());
    if (this.entries.get(path) !== file) return undefined;
    let current: Stats | undefined;
    try {
      current = statSync(path, { throwIfNoEntry: false });
    } catch {
      current = undefined; // ENOTDIR, EACCES, ELOOP...: the ordinary path gives the answer
    }
    if (!current || !sameVersion(current, file.stats)) {
      this.evict(path, file);
      this.misses++;
      return undefined;
    }
    this.entries.delete(path);
    this.entries.set(path, file);
    file.lastUsed = this.now();
    this.hits++;
    return file.retain();
  }

  /** Keep a freshly opened file for the next requests of `path` (the caller keeps its own reference). */
  admit(path: string, file: OpenFile): void {
    const old = this.entries.get(path);
    if (old) this.evict(path, old);
    const room = this.room();
    this.fit(Math.max(0, room - 1));
    if (room <= 0) return;
    file.lastUsed = this.now();
    this.entries.set(path, file.retain());
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(10, this.idleMs / 2)).unref();
  }

  /**
   * Keep `bytes`, the whole of `file` read at `readAt`, if it is still the entry for `path`,
   * small, settled (RACY_MS), and the budget has room once older entries' bytes are dropped.
   */
  keepBytes(path: string, file: OpenFile, bytes: Buffer, readAt: number): void {
    if (this.entries.get(path) !== file || file.bytes || bytes.length !== file.size || bytes.length > SMALL_FILE) return;
    if (bytes.length > this.limits.bytes || file.stats.ctimeMs >= readAt - this.racyMs) return;
    for (const entry of this.entries.values()) {
      if (this.bytesKept + bytes.length <= this.limits.bytes) break;
      this.dropBytes(entry);
    }
    file.bytes = bytes;
    this.bytesKept += bytes.length;
  }

  /**
   * Give every descriptor back (EMFILE): settles, with how many were dropped, once the idle ones
   * are closed; files in use close when their transfers end.
   */
  async shed(): Promise<number> {
    const dropped = [...this.entries];
    for (const [path, file] of dropped) this.evict(path, file);
    await Promise.all(dropped.map(([, file]) => file.closed));
    return dropped.length;
  }

  /** Close what has not been used for the idle time; entries are in order of last use. */
  sweep(): void {
    const before = this.now() - this.idleMs;
    for (const [path, file] of this.entries) {
      if (file.lastUsed > before) break;
      this.evict(path, file);
    }
  }

  private evict(path: string, file: OpenFile): void {
    if (this.entries.get(path) !== file) return;
    this.entries.delete(path);
    this.dropBytes(file);
    file.release();
    if (this.entries.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private dropBytes(file: OpenFile): void {
    if (!file.bytes) return;
    this.bytesKept -= file.bytes.length;
    file.bytes = undefined;
  }
}

/** RLIMIT_NOFILE as /proc lists it (Node raises the soft limit to the hard one at start). */
export function descriptorLimit(limits = readLimits()): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits ?? '');
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

function readLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'latin1');
  } catch {
    return undefined;
  }
}

/** The cache the flags ask for, within the descriptor budget; undefined when turned off. */
export function fileCacheFor(
  options: { fileCache: boolean; fileCacheFiles: number; fileCacheBytes: number },
  users: () => number,
): FileCache | undefined {
  if (!options.fileCache) return undefined;
  // Each connection or transfer (`users`) may need two: a socket, and a file the cache does not hold.
  const othersNeed = () => 2 * users();
  return new FileCache({ files: options.fileCacheFiles, bytes: options.fileCacheBytes, descriptorLimit: descriptorLimit(), othersNeed });
}
