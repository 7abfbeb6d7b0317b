'use strict';
// index.d.ts against a use of the client (types-usage.ts), with TypeScript's strict checks. The
// compiler is a devDependency pinned in the lock file.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');

test('index.d.ts types a use of the client', { skip: !fs.existsSync(tsc) && 'typescript not installed (npm ci)' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forq-types-'));
  const config = {
    compilerOptions: { strict: true, noEmit: true, module: 'commonjs', target: 'es2020', types: ['node'],
      baseUrl: '.', paths: { '@forq/client': [path.join(__dirname, '..', 'index.d.ts')] },
      typeRoots: [path.join(__dirname, '..', 'node_modules', '@types')] },
    files: [path.join(__dirname, 'types-usage.ts')],
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config));
  const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
});
