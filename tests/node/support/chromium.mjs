// Headless Chromium for the browser tests: the system's /usr/bin/chromium (CHROMIUM_PATH to
// override) driven by playwright-core, with a throwaway profile per test file.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { repoRoot } from './server.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Where tests put their screenshots. */
export const SHOTS = path.join(repoRoot, 'target', 'node-tests');

/**
 * Launches Chromium with a fresh profile and the given viewport. A missing browser is an
 * error, never a skip: CI installs it (.ci/run). `close()` also removes the profile.
 */
export async function launchChromium(viewport) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'comet-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
  });
  mkdirSync(SHOTS, { recursive: true });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
