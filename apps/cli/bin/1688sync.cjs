#!/usr/bin/env node
// `npx 1688sync`: runs the TypeScript sources through tsx with the workspace's compiler options.
const path = require('node:path');
const { register } = require('tsx/cjs/api');

// tsx's CommonJS register() takes no tsconfig option: it reads TSX_TSCONFIG_PATH when called.
// Without the workspace's tsconfig, decorators compile as standard ones and TypeORM's entities
// crash on load (every command that touches the database).
// eslint-disable-next-line no-restricted-properties -- the launcher itself, before any configuration exists
process.env.TSX_TSCONFIG_PATH = path.join(__dirname, '..', '..', '..', 'tsconfig.base.json');
register();
require('../src/main.ts');
