// What every script of `cargo xtask e2e` shares: Debian Chromium's flags, named steps,
// and one bound on the whole run. A script defines `main` and hands it to `run`; the
// first failure stops the run with the name of the step it happened in.

/** Headless Chromium with nothing that would call out of 127.0.0.1 on its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let currentStep = '';

/** Runs `body` as the step `name` and prints how long it took. */
export async function step(name, body) {
  currentStep = name;
  const started = Date.now();
  await body();
  console.log(`  ok  ${name} (${Date.now() - started} ms)`);
}

/**
 * Runs `main` as the script `label`: fails if the whole run takes longer than
 * `limitMs`, names the step a failure happened in, and exits either way, so that a
 * lingering socket or timer cannot hang CI. `passed` is added to the success line.
 */
export function run(label, limitMs, main, passed = '') {
  const timer = setTimeout(() => {
    console.error(`${label}: the whole run took longer than ${limitMs / 1000} s (at step "${currentStep}")`);
    process.exit(2);
  }, limitMs);
  main().then(
    () => {
      clearTimeout(timer);
      console.log(`${label}: all steps passed${passed}`);
      process.exit(0);
    },
    (error) => {
      console.error(`${label}: FAILED at step "${currentStep}"\n${error.stack ?? error}`);
      process.exit(1);
    },
  );
}
