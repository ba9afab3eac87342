/** The demo page's app (demo/index.html); built by demo/serve.ts. Filled in by the next commit. */
export {};
