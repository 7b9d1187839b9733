// Numbers the database cannot hold. The function hands a push to the database as the JSON text it
// received (JSON.parse would round an amount of 18 significant digits), and jsonb keeps every JSON
// number as a numeric: at most 131072 digits before the decimal point and 16383 after. A number
// beyond that (1e400000, 1e-400000) fails the cast of the whole text, on every retry of the
// request: one op would block a device's queue for good. Such a number in an op's own values (a
// protocol 2 op's data or base, a legacy item's payload) is replaced by its text, and its path goes
// to the database beside the request (sync.apply_push's second argument, which no client can
// state), so the database refuses that op alone; anywhere else it is a 400 naming the path.
import type { Issue } from "./schemas.ts";

export const CANNOT_HOLD =
  "a number the database cannot hold (at most 131072 digits before the decimal point and 16383 after)";

// PostgreSQL's numeric input (numeric.c): an exponent of INT_MAX / 2 or more either way is refused
// outright; then the digits kept after the point (the display scale) may be at most 0x3FFF, and the
// weight of the first digit, in base-10000 digits, at most 32767 (131071 in decimal digits).
const MAX_EXPONENT = 1073741823;
const MAX_SCALE = 16383;
const MAX_DECIMAL_WEIGHT = 131071;

/** Can PostgreSQL's numeric (and so jsonb) hold this JSON number token? */
export function pgHoldsNumber(token: string): boolean {
  const m = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(token);
  if (!m) return false;
  const [, whole, fraction = "", exponentText = "0"] = m;
  const exponent = Number(exponentText);
  if (!Number.isFinite(exponent) || Math.abs(exponent) >= MAX_EXPONENT) return false;
  if (Math.max(0, fraction.length - exponent) > MAX_SCALE) return false;
  const digits = whole + fraction;
  const leadingZeros = digits.length - digits.replace(/^0+/, "").length;
  if (leadingZeros === digits.length) return true; // zero: it has no first digit to weigh
  return whole.length - 1 - leadingZeros + exponent <= MAX_DECIMAL_WEIGHT;
}

/** A number token of a JSON text that PostgreSQL cannot hold, where it is. */
export interface UnstorableNumber {
  path: (string | number)[];
  start: number;
  end: number;
}

/**
 * The number tokens of a JSON text (one JSON.parse accepted) that PostgreSQL cannot hold, with
 * their paths. A tokenizer, not a parser: the text is known to be valid.
 */
export function unstorableNumbers(text: string): UnstorableNumber[] {
  const found: UnstorableNumber[] = [];
  const stack: { key: string | number; array: boolean }[] = [];
  let expectKey = false;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      j++;
      if (expectKey) {
        stack[stack.length - 1].key = JSON.parse(text.slice(i, j));
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      stack.push({ key: c === 0x5b ? 0 : "", array: c === 0x5b });
      expectKey = c === 0x7b;
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
      i++;
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top.array) top.key = (top.key as number) + 1;
      else expectKey = true;
      i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < text.length && isNumberChar(text.charCodeAt(j))) j++;
      if (!pgHoldsNumber(text.slice(i, j))) {
        found.push({ path: stack.map((f) => f.key), start: i, end: j });
      }
      i = j;
    } else {
      i++; // blanks, ':', and the letters of true, false and null
    }
  }
  return found;
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x2b || c === 0x65 || c === 0x45;
}

/** Where a number is within a request: ["ops", 3, "data", "potential_value"]. */
export type Path = (string | number)[];

/**
 * The push's JSON text with each number the database cannot hold in an op's own values replaced
 * by its text, and the paths where they were (`unstorable`); or, when such a number is anywhere
 * else, the issues for a 400. Every other character of the text is kept, so every other number
 * keeps its digits.
 */
export function markUnstorableNumbers(
  text: string,
  protocol: 1 | 2,
): { text: string; unstorable: Path[]; issues: Issue[] } {
  const list = protocol === 1 ? "items" : "ops";
  const own = protocol === 1 ? ["payload"] : ["data", "base"];
  const issues: Issue[] = [];
  const unstorable: Path[] = [];
  const edits: { at: number; remove: number; insert: string }[] = [];
  for (const n of unstorableNumbers(text)) {
    const [top, index, where] = n.path;
    if (top === list && typeof index === "number" && own.includes(String(where)) && n.path.length >= 4) {
      unstorable.push(n.path);
      edits.push({ at: n.start, remove: n.end - n.start, insert: JSON.stringify(text.slice(n.start, n.end)) });
    } else {
      issues.push({ path: n.path, message: CANNOT_HOLD });
    }
  }
  if (issues.length) return { text, unstorable: [], issues: issues.slice(0, 50) };
  // The edits are in the text's order: the scan found the numbers from left to right.
  const parts: string[] = [];
  let from = 0;
  for (const e of edits) {
    parts.push(text.slice(from, e.at), e.insert);
    from = e.at + e.remove;
  }
  parts.push(text.slice(from));
  return { text: parts.join(""), unstorable, issues: [] };
}
