#!/usr/bin/env node
// The installed `sluice` command: loads the TypeScript sources through tsx (a dependency of the
// package), so there is no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/sluice.ts');
