// Package cdr writes one call detail record per call at its end: as a JSON
// line to a file rotated by size or age (cdr.file), and POSTed to a webhook
// (cdr.webhook) through a spool directory, so that neither an unreachable
// webhook nor a restart loses a record.
//
// It is a b2bua.Observer: CallEnded builds the record and queues it for
// the writer goroutine, which appends it to the file and, for the webhook,
// writes it into the spool (one file per record, synced) before the sender
// POSTs it; the spool file goes only after a 2xx. Delivery to the webhook
// is at least once: a record whose 2xx was lost is sent again, with the
// same id.
package cdr
