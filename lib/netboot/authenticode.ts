// Does a PE image carry an Authenticode signature? Secure Boot firmware and shim refuse an
// image without one, so bootserve refuses to offer such a file in a signed role rather than let
// the machine fail with "Access Denied" or "Security Violation".
//
// This only looks for the signature's container (PE/COFF spec, "The Attribute Certificate
// Table"): the certificate-table data directory (index 4, a file offset, not an RVA) is
// non-empty, lies inside the file, and its first WIN_CERTIFICATE is a PKCS#7 SignedData of
// revision 2. Whether the signature verifies against the firmware's keys is the firmware's
// business. Pure: bytes in, verdict out.

export type PeSignature =
  | { kind: 'signed'; certificateBytes: number }
  | { kind: 'unsigned'; reason: string }
  | { kind: 'not-pe'; reason: string };

const IMAGE_DIRECTORY_ENTRY_SECURITY = 4;
const PE32_MAGIC = 0x10b;
const PE32_PLUS_MAGIC = 0x20b;
const WIN_CERT_REVISION_2_0 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002;
/** dwLength, wRevision, wCertificateType. */
const WIN_CERTIFICATE_HEADER = 8;

export function peSignature(image: Buffer): PeSignature {
  if (image.length < 0x40 || image.toString('latin1', 0, 2) !== 'MZ') return { kind: 'not-pe', reason: 'no MZ header' };
  const pe = image.readUInt32LE(0x3c);
  if (pe + 24 > image.length || image.toString('latin1', pe, pe + 4) !== 'PE\0\0') return { kind: 'not-pe', reason: 'no PE signature' };
  const optional = pe + 24;
  const optionalSize = image.readUInt16LE(pe + 20);
  if (optional + 2 > image.length) return { kind: 'not-pe', reason: 'truncated optional header' };
  const magic = image.readUInt16LE(optional);
  // Where NumberOfRvaAndSizes and the data directories sit depends on PE32 vs PE32+.
  const counts = magic === PE32_MAGIC ? 92 : magic === PE32_PLUS_MAGIC ? 108 : -1;
  if (counts < 0) return { kind: 'not-pe', reason: `unknown optional header magic 0x${magic.toString(16)}` };
  if (optionalSize < counts + 4 || optional + counts + 4 > image.length) return { kind: 'not-pe', reason: 'truncated optional header' };
  const directories = image.readUInt32LE(optional + counts);
  const entry = optional + counts + 4 + IMAGE_DIRECTORY_ENTRY_SECURITY * 8;
  if (directories <= IMAGE_DIRECTORY_ENTRY_SECURITY || entry + 8 > optional + optionalSize || entry + 8 > image.length) {
    return { kind: 'unsigned', reason: 'no certificate table directory' };
  }
  const offset = image.readUInt32LE(entry);
  const size = image.readUInt32LE(entry + 4);
  if (offset === 0 || size === 0) return { kind: 'unsigned', reason: 'the certificate table is empty' };
  if (size < WIN_CERTIFICATE_HEADER || offset + size > image.length) {
    return { kind: 'unsigned', reason: 'the certificate table lies outside the file' };
  }
  const length = image.readUInt32LE(offset);
  const revision = image.readUInt16LE(offset + 4);
  const type = image.readUInt16LE(offset + 6);
  if (length < WIN_CERTIFICATE_HEADER || length > size) return { kind: 'unsigned', reason: 'malformed WIN_CERTIFICATE' };
  if (revision !== WIN_CERT_REVISION_2_0 || type !== WIN_CERT_TYPE_PKCS_SIGNED_DATA) {
    return { kind: 'unsigned', reason: `certificate of revision 0x${revision.toString(16)} type ${type}, not PKCS#7 SignedData` };
  }
  return { kind: 'signed', certificateBytes: length - WIN_CERTIFICATE_HEADER };
}

/** The COFF machine field of a PE image (0x8664 x64, 0xaa64 arm64, ...), or undefined if it is none. */
export function peMachine(image: Buffer): number | undefined {
  if (image.length < 0x40 || image.toString('latin1', 0, 2) !== 'MZ') return undefined;
  const pe = image.readUInt32LE(0x3c);
  if (pe + 6 > image.length || image.toString('latin1', pe, pe + 4) !== 'PE\0\0') return undefined;
  return image.readUInt16LE(pe + 4);
}
