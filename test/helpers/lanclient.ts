// A PXE client's first steps, run from inside a namespace of the virtual LAN (the test process
// cannot reach the lab): a DHCPDISCOVER broadcast and the replies it draws, and a TFTP download
// in lockstep. Each runs as a short node child (`ip netns exec NS node -e ...`), bounded in time.
import { spawnSync } from 'node:child_process';
import { decodePacket, type DhcpPacket } from '../../lib/dhcp/packet.js';
import type { Lab } from './lab.js';

type Role = Parameters<Lab['exec']>[0];

const DHCP_SCRIPT = `
const dgram = require('node:dgram');
const [hex, ms] = process.argv.slice(1);
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const replies = [];
s.on('message', (m, r) => replies.push({ from: r.address, hex: m.toString('hex') }));
s.bind(68, '0.0.0.0', () => {
  s.setBroadcast(true);
  s.send(Buffer.from(hex, 'hex'), 67, '255.255.255.255', (err) => { ` +
  `if (err) { console.log(JSON.stringify({ error: err.message })); process.exit(0); } });
  setTimeout(() => { console.log(JSON.stringify({ replies })); process.exit(0); }, Number(ms));
});
`;

export interface DhcpReply {
  from: string;
  packet: DhcpPacket;
}

/** Broadcast `discover` from namespace `role` (port 68) and collect every reply for `ms`. */
export function dhcpProbe(lab: Lab, role: Role, discover: Buffer, ms = 3000): DhcpReply[] {
  // Linux sends a limited broadcast from an unbound socket only with a route for it: the lab's
  // hosts have none beyond their /24, so give this namespace a default route out of eth0.
  spawnSync('ip', ['-n', lab.ns[role], 'route', 'replace', 'default', 'dev', 'eth0'], { timeout: 10_000 });
  const r = spawnSync(
    lab.exec(role)[0] as string,
    [...lab.exec(role).slice(1), process.execPath, '-e', DHCP_SCRIPT, discover.toString('hex'), String(ms)],
    { encoding: 'utf8', timeout: ms + 10_000 },
  );
  const result = JSON.parse(r.stdout.trim().split('\n').pop() || `{"error":${JSON.stringify(r.stderr || 'no output')}}`) as {
    error?: string;
    replies?: { from: string; hex: string }[];
  };
  if (result.error !== undefined) throw new Error(`DHCP probe in ${role}: ${result.error}`);
  return (result.replies ?? []).flatMap(({ from, hex }) => {
    const d = decodePacket(Buffer.from(hex, 'hex'));
    return d.kind === 'packet' ? [{ from, packet: d.packet }] : [];
  });
}

// RRQ without options (512-byte blocks), ACK each block from the transfer's own port, stop at a
// short block; prints the transfer's source port and the bytes (hex).
const TFTP_SCRIPT = `
const dgram = require('node:dgram');
const [server, file] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
const parts = [];
let tid;
const done = (out) => { console.log(JSON.stringify(out)); process.exit(0); };
setTimeout(() => done({ error: 'timed out after ' + parts.length + ' blocks' }), 20000);
s.on('message', (m, r) => {
  const op = m.readUInt16BE(0);
  if (op === 5) return done({ error: 'ERROR ' + m.readUInt16BE(2) + ' ' + m.subarray(4, m.length - 1).toString() });
  if (op !== 3) return;
  tid = tid ?? r.port;
  const block = m.readUInt16BE(2);
  if (block === ((parts.length + 1) & 0xffff)) parts.push(m.subarray(4));
  const ack = Buffer.from([0, 4, block >> 8, block & 0xff]);
  s.send(ack, r.port, r.address);
  if (m.length < 516) done({ port: tid, hex: Buffer.concat(parts).toString('hex') });
});
s.bind(0, () => s.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(file + '\\0octet\\0')]), 69, server));
`;

/** Download `file` from `server`:69 in namespace `role`; the data and the port it came from. */
export function tftpGet(lab: Lab, role: Role, server: string, file: string): { port: number; data: Buffer } {
  const r = spawnSync(lab.exec(role)[0] as string, [...lab.exec(role).slice(1), process.execPath, '-e', TFTP_SCRIPT, server, file], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const result = JSON.parse(r.stdout.trim().split('\n').pop() || `{"error":${JSON.stringify(r.stderr || 'no output')}}`) as {
    error?: string;
    port?: number;
    hex?: string;
  };
  if (result.error !== undefined) throw new Error(`TFTP ${file} from ${server}: ${result.error}`);
  return { port: result.port as number, data: Buffer.from(result.hex ?? '', 'hex') };
}
