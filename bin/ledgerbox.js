#!/usr/bin/env node
// The `ledgerbox` command; the code lives in src/cli and is compiled to dist by `npm run build`.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
