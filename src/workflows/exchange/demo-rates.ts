/** Rates the fake FX provider quotes in the demo and `ledgerbox worker --fake-providers`. */
export const demoRates: Record<string, { amount: bigint; scale: number }> = {
  'USD/EUR': { amount: 9213n, scale: 4 },
  'EUR/USD': { amount: 10854n, scale: 4 },
  'USD/GBP': { amount: 7921n, scale: 4 },
  'GBP/USD': { amount: 12625n, scale: 4 },
  'EUR/GBP': { amount: 8598n, scale: 4 },
  'GBP/EUR': { amount: 11631n, scale: 4 },
  'USD/JPY': { amount: 15432n, scale: 2 },
  'JPY/USD': { amount: 648n, scale: 5 },
};
