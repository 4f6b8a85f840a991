/**
 * Why a connection test answers 200 or 202 is not chance: the API waits TEST_WAIT_MS for the
 * result, and hands the worker a budget for the whole test that ends before that wait does, by a
 * margin for the job to be picked up and its result read back. The worker cuts the test at the
 * budget: the step running then fails with code `timeout`, later steps are skipped, and the result
 * is there in time. Per-step bounds (CONNECT_TIMEOUT_MS) still apply within it; their sum no longer
 * decides the answer. So a test a worker picks up within the margin always answers 200 — a
 * hanging peer included — and 202 means only that no worker took the job in time.
 */
const MAX_MARGIN_MS = 2000;

/** The whole test's budget for a wait of `waitMs`; undefined when the API does not wait (202 at once). */
export function testBudgetMs(waitMs: number): number | undefined {
  if (waitMs <= 0) return undefined;
  // A quarter of short waits: a 3 s wait still leaves the test 2.25 s.
  const margin = Math.min(MAX_MARGIN_MS, Math.round(waitMs / 4));
  return waitMs - margin;
}

/** The reason a test is cut at its budget: classified as `timeout` (its name), said plainly. */
export function testBudgetExceeded(budgetMs: number): Error {
  return Object.assign(
    new Error(`no answer within the test's time (${budgetMs} ms: TEST_WAIT_MS less a pickup margin)`),
    { name: 'TimeoutError' },
  );
}
