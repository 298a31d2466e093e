/** Polls `check` until it returns a value other than undefined; fails after `timeout_ms`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeout_ms = 20_000): Promise<T> {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout_ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
