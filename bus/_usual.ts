// How long something usually takes, as a moving average of what it took: the first sample as it
// is, then each one a sixteenth of the way. Used to tell a slow system (everything takes long)
// from a stuck part of it (one thing takes far longer than the rest).

/** A moving average of durations (ms); 0 until the first sample. */
export class UsualTime {
  #ms = 0;

  /** The average so far (0 before any sample). */
  get ms(): number {
    return this.#ms;
  }

  /** Adds one duration. */
  add(took: number): void {
    this.#ms = this.#ms === 0 ? took : this.#ms + (took - this.#ms) / 16;
  }
}
