// Content types suited to boot artifacts, then the common web types; everything else is bytes.
import { extname } from 'node:path';

const TEXT = 'text/plain; charset=utf-8';

const TYPES: Record<string, string> = {
  '.ipxe': TEXT,
  '.cfg': TEXT,
  '.txt': TEXT,
  '.conf': TEXT,
  '.efi': 'application/efi',
  '.iso': 'application/vnd.efi-iso',
  '.img': 'application/vnd.efi-img',
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/vnd.microsoft.icon',
  '.pdf': 'application/pdf',
  '.gz': 'application/gzip',
  '.xz': 'application/x-xz',
  '.zst': 'application/zstd',
  '.tar': 'application/x-tar',
  '.zip': 'application/zip',
  '.sig': 'application/pgp-signature',
  '.asc': 'application/pgp-signature',
};

export function contentTypeFor(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}
