import { AppError } from '@1688sync/core';

/** Wrong arguments: the CLI prints the message and the usage, and exits 2. */
export class UsageError extends AppError {
  readonly code = 'usage';
  constructor(message: string) {
    super(message, { permanent: true });
  }
}
