import { defineConfig } from 'vitest/config';

// GPU tests share one software adapter on a 2-core machine: run test files one at a time
// (parallel files would only fight over the same two cores and multiply device start-up).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
