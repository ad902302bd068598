// Figures as a person reads them, one way everywhere: sizes in binary units, rates, durations,
// counted nouns. Self-contained functions on purpose: the operator page sends them to the browser
// as source text (admin/fleet.ts), so none may use anything from outside its own body.

/** Bytes as a person reads them: "512 B", "1.5 KiB", "30.0 MiB" (powers of 1024, one decimal). */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let value = bytes;
  let unit = 0;
  // Round first, so 1048575 bytes reads "1.0 MiB", not "1024.0 KiB".
  while (unit < units.length - 1 && (unit === 0 ? value : Number(value.toFixed(1))) >= 1024) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A rate: "4.2 MiB/s". */
export function humanRate(bytesPerSecond: number): string {
  return `${humanBytes(bytesPerSecond)}/s`;
}

/** A duration: "12 ms", "3.4 s", "2 min 5 s", "1 h 3 min", "2 d 4 h". */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** "1 connection", "2 connections". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
