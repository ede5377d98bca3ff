/** Reading the store's answers in the bench's own clients. */

/** Status, body text and the body parsed as JSON (null when it is not JSON). */
export async function answerOf(res: Response): Promise<{ status: number; json: any; text: string }> {
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text };
}
