// Every machine's boot, step by step, for the operator: built from the records every service
// logs (DHCP answers and refusals, TFTP and HTTP transfers), keyed by MAC address once one is known.
//
// Addresses tie the records together: a DHCP request on 4011 comes from the machine's address,
// and iPXE asks for machines/<mac>.ipxe from its own; TFTP and HTTP records have only the
// address. A machine never seen with a MAC (its LAN's DHCP server pointed it here directly) is
// listed by its address. Bounded: the last MAX_MACHINES machines, MAX_STEPS steps each.
//
// A PXE or HTTP Boot client that got no answer (no binary for its firmware, rate-limited) is
// listed with the reason: that is the "why didn't it boot?" case. DHCP traffic that is not a
// netboot client's (or not readable) is not. Browser noise (favicon.ico) is nobody's step.
import type { AccessRecord, DhcpRecord } from './log.js';
import { stageOf, type Stage } from './stages.js';

export type FirmwareKind = 'bios-pxe' | 'uefi-pxe' | 'uefi-http' | 'ipxe';

/** ok; failed (red, with the reason); skipped: an expected miss (edk2's size probe, no machine script). */
export type StepResult = 'ok' | 'failed' | 'skipped';

export interface BootStep {
  time: string;
  protocol: 'dhcp' | 'tftp' | 'http';
  /** The timeline column it belongs to. */
  stage: Stage;
  /** What happened, as a person says it: "proxy offer sent", "kernel over HTTP". */
  step: string;
  /** The file or boot file concerned. */
  file?: string;
  /** complete, stalled, 404, "no-boot-file: no iPXE binary for efi-arm64", ... */
  outcome: string;
  result: StepResult;
  /** Transfers: bytes sent, bytes due, how long it took. */
  bytes?: number;
  size?: number;
  durationMs?: number;
}

/** booting: active lately; waiting: quiet mid-boot (a menu, or it gave up silently); done: kernel and initrd fetched. */
export type BootState = 'booting' | 'waiting' | 'done' | 'failed';

/** The columns of a boot's timeline, in order. */
export const TIMELINE = ['dhcp', 'boot-program', 'script', 'kernel', 'initrd'] as const;
export type TimelineStage = (typeof TIMELINE)[number];

export interface MachineView {
  /** aa:bb:cc:dd:ee:ff, or null when only the address is known. */
  mac: string | null;
  address: string | null;
  /** The machine's own firmware: the first kind seen that is not the iPXE it chains to. */
  firmware: FirmwareKind | null;
  /** Option 93 of that firmware. */
  arch: number | null;
  /** The boot path its firmware was last sent down: iPXE, or the signed shim → GRUB chain. */
  bootPath: 'ipxe' | 'signed' | null;
  firstSeen: string;
  lastSeen: string;
  /** Its history, oldest first (the last MAX_STEPS). */
  steps: BootStep[];
  lastError: BootStep | null;
  /** Where its latest boot stands. */
  state: BootState;
  /** When its latest boot began (its firmware's first DHCP packet of that boot). */
  bootStartedAt: string;
  /** The latest boot, one step per column (the last that counted); absent: not reached. */
  timeline: Partial<Record<TimelineStage, BootStep>>;
}

type MachineRecord = Omit<MachineView, 'state' | 'bootStartedAt' | 'timeline'>;

const MAX_MACHINES = 1000;
const MAX_STEPS = 20;
/** Names and messages are the client's: keep the list's size bounded whatever it sends. */
const MAX_TEXT = 256;
/** Quiet this long mid-boot: waiting rather than booting. */
export const WAITING_AFTER_MS = 30_000;
/** A kernel fetched and nothing since for this long: done (a boot without an initrd). */
const DONE_AFTER_MS = 10_000;
const clip = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text);
/** Requests of a per-machine script name the MAC: machines/52-54-00-12-34-56.ipxe. */
const MACHINE_SCRIPT = /(?:^|\/)machines\/([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.ipxe$/i;
/** Ignored DHCP packets that are not a netboot client's: never a machine of ours. */
const NOT_NETBOOT = new Set(['not-pxe', 'not-a-request', 'wrong-message-type', 'malformed']);

export class Machines {
  /** By key (MAC, or "ip:ADDRESS"); a Map keeps insertion order, refreshed on each sighting. */
  private readonly byKey = new Map<string, MachineRecord>();
  private readonly macOfAddress = new Map<string, string>();

  constructor(private readonly limit = MAX_MACHINES) {}

  /** Take one record from any service. */
  observe(record: AccessRecord | DhcpRecord): void {
    switch (record.protocol) {
      case 'dhcp':
        return this.dhcp(record);
      case 'tftp': {
        const { what, stage } = stageOf(record.path);
        if (what === 'browser noise') return;
        const refused = record.outcome === 'refused';
        const probe = record.outcome === 'client-gone' && record.bytesSent === 0; // edk2 asks for the size, then stops
        return this.step(record.client, {
          ...transfer(record),
          protocol: 'tftp',
          stage,
          step: `${what} over TFTP`,
          file: record.path,
          outcome: refused ? `refused: ${record.error ?? ''}` : record.outcome,
          result: record.outcome === 'complete' ? 'ok' : probe ? 'skipped' : 'failed',
        });
      }
      case 'http': {
        const path = record.path.split('?')[0] as string;
        const { what, stage } = stageOf(path);
        if (what === 'browser noise') return;
        const named = MACHINE_SCRIPT.exec(path);
        if (named) this.learn(record.client, (named[1] as string).replace(/-/g, ':').toLowerCase());
        const failed = record.status >= 400 || record.outcome !== 'complete';
        const method = record.method === 'GET' ? '' : ` (${record.method})`;
        return this.step(record.client, {
          ...transfer(record),
          protocol: 'http',
          stage,
          step: what === 'directory listing' ? `${what}${method}` : `${what} over HTTP${method}`,
          file: record.path,
          outcome: record.status >= 400 ? `${record.status}` : record.outcome,
          // A missing per-machine script is the ordinary case, not an error.
          result: !failed ? 'ok' : named && record.status === 404 ? 'skipped' : 'failed',
        });
      }
    }
  }

  /** Every machine, newest first, with where its latest boot stands at `now`. */
  list(now = Date.now()): MachineView[] {
    return [...this.byKey.values()].reverse().map((m) => viewOf(m, now));
  }

  private dhcp(r: DhcpRecord): void {
    if (r.mac === '-') return; // unreadable
    if (r.answer === 'ignored' && NOT_NETBOOT.has(r.reason ?? '')) return;
    const m = this.machine(r.mac, r.time);
    // Only a request on 4011 comes from the machine's own address (a DISCOVER on 67 may come
    // through a relay, whose address is not the machine's).
    if (r.answer === 'ack' && r.client !== '0.0.0.0') this.learn(r.client, r.mac);
    // Every boot ends with iPXE asking too: keep the firmware that started it.
    if (r.kind && (m.firmware === null || m.firmware === 'ipxe')) {
      m.firmware = r.kind as FirmwareKind;
      m.arch = r.arch;
    }
    m.arch ??= r.arch;
    if (r.bootPath && r.kind !== 'ipxe') m.bootPath = r.bootPath;
    // iPXE's request is part of the boot it continues, not the start of a new one; unless iPXE
    // is the machine's own firmware (a NIC's iPXE ROM, as in QEMU).
    const stage: Stage = r.kind === 'ipxe' && m.firmware !== 'ipxe' ? 'other' : 'dhcp';
    const file = r.bootFile ? { file: r.bootFile } : {};
    const reason = `${r.reason ?? 'ignored'}${r.detail ? `: ${r.detail}` : ''}`;
    const answer = `${r.kind === 'ipxe' ? 'iPXE: ' : ''}${r.answer === 'offer' ? 'proxy offer sent' : 'boot file sent on 4011'}`;
    const step =
      r.answer === 'ignored'
        ? { step: `${r.message} not answered`, outcome: reason, result: 'failed' as const }
        : { step: answer, ...file, outcome: 'answered', result: 'ok' as const };
    this.push(m, { time: r.time, protocol: 'dhcp', stage, ...step });
  }

  /** The address belongs to this MAC: a machine listed by address alone joins it. */
  private learn(address: string, mac: string): void {
    this.macOfAddress.delete(address);
    this.macOfAddress.set(address, mac);
    if (this.macOfAddress.size > this.limit) this.macOfAddress.delete(this.macOfAddress.keys().next().value as string);
    const m = this.machine(mac, new Date().toISOString());
    m.address = address;
    const orphan = this.byKey.get(`ip:${address}`);
    if (orphan) {
      this.byKey.delete(`ip:${address}`);
      m.steps = [...orphan.steps, ...m.steps].sort((a, b) => a.time.localeCompare(b.time)).slice(-MAX_STEPS);
      m.lastError ??= orphan.lastError;
      if (orphan.firstSeen < m.firstSeen) m.firstSeen = orphan.firstSeen;
    }
  }

  private step(address: string, step: BootStep): void {
    const mac = this.macOfAddress.get(address);
    const m = this.machine(mac ?? `ip:${address}`, step.time);
    m.address = address;
    this.push(m, step);
  }

  private push(m: MachineRecord, step: BootStep): void {
    if (step.file !== undefined) step.file = clip(step.file);
    step.outcome = clip(step.outcome);
    m.steps.push(step);
    if (m.steps.length > MAX_STEPS) m.steps.shift();
    if (step.result === 'failed') m.lastError = step;
    m.lastSeen = step.time;
  }

  /** The machine for `key`, created if new, moved to the newest end; the oldest beyond the limit go. */
  private machine(key: string, time: string): MachineRecord {
    let m = this.byKey.get(key);
    if (m) this.byKey.delete(key);
    else {
      const mac = key.startsWith('ip:') ? null : key;
      m = { mac, address: null, firmware: null, arch: null, bootPath: null, firstSeen: time, lastSeen: time, steps: [], lastError: null };
    }
    this.byKey.set(key, m);
    if (this.byKey.size > this.limit) this.byKey.delete(this.byKey.keys().next().value as string);
    return m;
  }
}

const transfer = (r: AccessRecord) => ({ time: r.time, bytes: r.bytesSent, size: r.bytesDue, durationMs: r.durationMs });

/** The steps of the latest boot: from the first of the last run of firmware DHCP packets on. */
export function latestBoot(steps: readonly BootStep[]): BootStep[] {
  let start = steps.length - 1;
  while (start >= 0 && steps[start]?.stage !== 'dhcp') start--;
  while (start > 0 && steps[start - 1]?.stage === 'dhcp') start--;
  return steps.slice(Math.max(start, 0));
}

/** Where a boot stands: its last step that counted failed; kernel and initrd fetched; quiet or not. */
export function bootState(boot: readonly BootStep[], lastSeen: string, now: number): BootState {
  const counted = boot.filter((s) => s.result !== 'skipped');
  if (counted.at(-1)?.result === 'failed') return 'failed';
  const fetched = (stage: Stage) => counted.some((s) => s.stage === stage && s.result === 'ok');
  const quietMs = now - Date.parse(lastSeen);
  if (fetched('kernel') && (fetched('initrd') || quietMs >= DONE_AFTER_MS)) return 'done';
  return quietMs >= WAITING_AFTER_MS ? 'waiting' : 'booting';
}

function viewOf(m: MachineRecord, now: number): MachineView {
  const boot = latestBoot(m.steps);
  const timeline: MachineView['timeline'] = {};
  for (const stage of TIMELINE) {
    const mine = boot.filter((s) => s.stage === stage);
    const shown = mine.filter((s) => s.result !== 'skipped').at(-1) ?? mine.at(-1);
    if (shown) timeline[stage] = shown;
  }
  return { ...m, steps: [...m.steps], state: bootState(boot, m.lastSeen, now), bootStartedAt: boot[0]?.time ?? m.firstSeen, timeline };
}
