#!/usr/bin/env node
// Thin shim: the code is TypeScript under lib/, compiled to dist/ by `npm install` (prepare).
import('../dist/main.js').catch((err) => {
  process.stderr.write(`bootserve: cannot start (${err.code === 'ERR_MODULE_NOT_FOUND' ? 'not built: run npm install' : err.message})\n`);
  process.exit(1);
});
