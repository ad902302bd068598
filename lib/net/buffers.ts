// Receive buffers for the UDP services' request sockets.
import type { Socket } from 'node:dgram';

const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * A storm's DISCOVERs, 4011 requests and RRQs (and their resends) come within a second or two,
 * maybe while the one thread streams HTTP: ask for a receive buffer that holds thousands of
 * them. The kernel caps it at net.core.rmem_max (208 KiB unless raised: docs/storm.md); a
 * refusal leaves the default.
 */
export function roomForABurst(socket: Socket): void {
  try {
    socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
  } catch {
    // keep the default
  }
}
