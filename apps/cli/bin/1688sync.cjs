#!/usr/bin/env node
// `npx 1688sync`: runs the TypeScript sources through tsx with the workspace's compiler options.
const path = require('node:path');
const { register } = require('tsx/cjs/api');

register({ tsconfig: path.join(__dirname, '..', '..', '..', 'tsconfig.base.json') });
require('../src/main.ts');
