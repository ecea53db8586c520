// Package retry is the one backoff policy of Holdfast's retried network
// calls (the data mover client, backup copies): exponential from Initial,
// capped at Max, with ±25 % jitter, for at most Attempts attempts.
package retry
