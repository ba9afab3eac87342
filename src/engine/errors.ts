/** An error the GPU reported: validation, out of memory, device loss, or a kernel that failed to
 * compile. The message names the kernel (file and entry point) whenever it is known. */
export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

/** No usable WebGPU adapter: the message says what is missing and how to install it. */
export class NoAdapterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoAdapterError';
  }
}

/** Bad input to an op (shape, dtype, disposed tensor): raised before any kernel runs. */
export class OpError extends Error {
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'OpError';
  }
}
