// How a transfer ends, declared once: the log, the metrics of every service and the admin pages
// list these, and the compiler holds them to this list.

export const TRANSFER_OUTCOMES = ['complete', 'client-gone', 'stalled', 'read-error', 'shutdown'] as const;

/** `shutdown`: still running when the shutdown grace ran out. */
export type TransferOutcome = (typeof TRANSFER_OUTCOMES)[number];
