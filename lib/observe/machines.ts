// Every machine's boot, step by step, for the operator: built from the records every service
// logs (DHCP answers, TFTP and HTTP transfers), keyed by MAC address once one is known.
//
// Addresses tie the records together: a DHCP request on 4011 comes from the machine's address,
// and iPXE asks for machines/<mac>.ipxe from its own; TFTP and HTTP records have only the
// address. A machine never seen with a MAC (its LAN's DHCP server pointed it here directly) is
// listed by its address. Bounded: the last MAX_MACHINES machines, MAX_STEPS steps each.
import type { AccessRecord, DhcpRecord } from './log.js';

export type FirmwareKind = 'bios-pxe' | 'uefi-pxe' | 'uefi-http' | 'ipxe';

export interface BootStep {
  time: string;
  protocol: 'dhcp' | 'tftp' | 'http';
  /** What happened, as a person says it: "proxy offer sent", "boot program fetched over TFTP". */
  step: string;
  /** The file or boot file concerned. */
  file?: string;
  outcome: string;
}

export interface MachineView {
  /** aa:bb:cc:dd:ee:ff, or null when only the address is known. */
  mac: string | null;
  address: string | null;
  /** The machine's own firmware: the first kind seen that is not the iPXE it chains to. */
  firmware: FirmwareKind | null;
  /** Option 93 of that firmware. */
  arch: number | null;
  firstSeen: string;
  lastSeen: string;
  steps: BootStep[];
  lastError: BootStep | null;
}

const MAX_MACHINES = 1000;
const MAX_STEPS = 20;
/** Names and messages are the client's: keep the list's size bounded whatever it sends. */
const MAX_TEXT = 256;
const clip = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text);
/** Requests of a per-machine script name the MAC: machines/52-54-00-12-34-56.ipxe. */
const MACHINE_SCRIPT = /(?:^|\/)machines\/([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.ipxe$/i;

export class Machines {
  /** By key (MAC, or "ip:ADDRESS"); a Map keeps insertion order, refreshed on each sighting. */
  private readonly byKey = new Map<string, MachineView>();
  private readonly macOfAddress = new Map<string, string>();

  constructor(private readonly limit = MAX_MACHINES) {}

  /** Take one record from any service. */
  observe(record: AccessRecord | DhcpRecord): void {
    switch (record.protocol) {
      case 'dhcp':
        return this.dhcp(record);
      case 'tftp':
        return this.step(record.client, record.time, {
          protocol: 'tftp',
          step: record.outcome === 'refused' ? 'TFTP refused' : 'boot program over TFTP',
          file: record.path,
          outcome: record.outcome === 'refused' ? `refused: ${record.error ?? ''}` : record.outcome,
        }, record.outcome !== 'complete' && !(record.outcome === 'client-gone' && record.bytesSent === 0));
      case 'http': {
        const named = MACHINE_SCRIPT.exec(record.path.split('?')[0] as string);
        if (named) this.learn(record.client, (named[1] as string).replace(/-/g, ':').toLowerCase());
        const failed = record.status >= 400 || record.outcome !== 'complete';
        // A missing per-machine script is the ordinary case, not an error.
        return this.step(record.client, record.time, {
          protocol: 'http',
          step: `${record.method} ${/\/boot\.ipxe$/.test(record.path) ? 'boot script' : named ? 'machine script' : 'file'}`,
          file: record.path,
          outcome: record.status >= 400 ? `${record.status}` : record.outcome,
        }, failed && !(named && record.status === 404));
      }
    }
  }

  list(): MachineView[] {
    return [...this.byKey.values()].reverse();
  }

  private dhcp(r: DhcpRecord): void {
    if (r.answer === 'ignored' || r.mac === '-') return; // not a netboot client, or unreadable
    const m = this.machine(r.mac, r.time);
    // Only a request on 4011 comes from the machine's own address (a DISCOVER on 67 may come
    // through a relay, whose address is not the machine's).
    if (r.answer === 'ack' && r.client !== '0.0.0.0') this.learn(r.client, r.mac);
    // Every boot ends with iPXE asking too: keep the firmware that started it.
    if (r.kind && (m.firmware === null || m.firmware === 'ipxe')) {
      m.firmware = r.kind as FirmwareKind;
      m.arch = r.arch;
    }
    this.push(m, { time: r.time, protocol: 'dhcp', step: r.answer === 'offer' ? 'proxy offer sent' : 'boot file sent on 4011', ...(r.bootFile ? { file: r.bootFile } : {}), outcome: 'answered' }, false);
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
    }
  }

  private step(address: string, time: string, step: Omit<BootStep, 'time'>, failed: boolean): void {
    const mac = this.macOfAddress.get(address);
    const m = this.machine(mac ?? `ip:${address}`, time);
    m.address = address;
    this.push(m, { time, ...step }, failed);
  }

  private push(m: MachineView, step: BootStep, failed: boolean): void {
    if (step.file !== undefined) step.file = clip(step.file);
    step.outcome = clip(step.outcome);
    m.steps.push(step);
    if (m.steps.length > MAX_STEPS) m.steps.shift();
    if (failed) m.lastError = step;
    m.lastSeen = step.time;
  }

  /** The machine for `key`, created if new, moved to the newest end; the oldest beyond the limit go. */
  private machine(key: string, time: string): MachineView {
    let m = this.byKey.get(key);
    if (m) this.byKey.delete(key);
    else m = { mac: key.startsWith('ip:') ? null : key, address: null, firmware: null, arch: null, firstSeen: time, lastSeen: time, steps: [], lastError: null };
    this.byKey.set(key, m);
    if (this.byKey.size > this.limit) this.byKey.delete(this.byKey.keys().next().value as string);
    return m;
  }
}
