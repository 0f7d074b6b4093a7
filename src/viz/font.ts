/**
 * A 5x7 bitmap font for printable ASCII (with one descender row, so cells are 5x8), drawn
 * into RGB canvases. Glyphs are written out below, one per line: rows top to bottom, `#` on.
 * Characters outside printable ASCII draw as `?`.
 */

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 8;
/** Horizontal advance per character (glyph plus one column of spacing). */
export const ADVANCE = 6;

// prettier-ignore
const GLYPHS: Record<string, string> = {
  " ": "..... ..... ..... ..... ..... ..... .....",
  "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
  '"': ".#.#. .#.#. ..... ..... ..... ..... .....",
  "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
  "$": "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
  "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
  "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
  "'": "..#.. ..#.. .#... ..... ..... ..... .....",
  "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
  "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
  ",": "..... ..... ..... ..... ..... .##.. ..#.. .#...",
  "-": "..... ..... ..... ##### ..... ..... .....",
  ".": "..... ..... ..... ..... ..... .##.. .##..",
  "/": "..... ....# ...#. ..#.. .#... #.... .....",
  "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
  "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2": ".###. #...# ....# ...#. ..#.. .#... #####",
  "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
  "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5": "##### #.... ####. ....# ....# #...# .###.",
  "6": "..##. .#... #.... ####. #...# #...# .###.",
  "7": "##### ....# ...#. ..#.. .#... .#... .#...",
  "8": ".###. #...# #...# .###. #...# #...# .###.",
  "9": ".###. #...# #...# .#### ....# ...#. .##..",
  ":": "..... .##.. .##.. ..... .##.. .##.. .....",
  ";": "..... .##.. .##.. ..... .##.. ..#.. .#...",
  "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
  "=": "..... ..... ##### ..... ##### ..... .....",
  ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
  "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
  "@": ".###. #...# ....# .##.# #.#.# #.#.# .###.",
  "A": ".###. #...# #...# ##### #...# #...# #...#",
  "B": "####. #...# #...# ####. #...# #...# ####.",
  "C": ".###. #...# #.... #.... #.... #...# .###.",
  "D": "###.. #..#. #...# #...# #...# #..#. ###..",
  "E": "##### #.... #.... ####. #.... #.... #####",
  "F": "##### #.... #.... ####. #.... #.... #....",
  "G": ".###. #...# #.... #.### #...# #...# .####",
  "H": "#...# #...# #...# ##### #...# #...# #...#",
  "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
  "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  "L": "#.... #.... #.... #.... #.... #.... #####",
  "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
  "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
  "O": ".###. #...# #...# #...# #...# #...# .###.",
  "P": "####. #...# #...# ####. #.... #.... #....",
  "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
  "R": "####. #...# #...# ####. #.#.. #..#. #...#",
  "S": ".#### #.... #.... .###. ....# ....# ####.",
  "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "U": "#...# #...# #...# #...# #...# #...# .###.",
  "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
  "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  "Z": "##### ....# ...#. ..#.. .#... #.... #####",
  "[": ".###. .#... .#... .#... .#... .#... .###.",
  "\\": "..... #.... .#... ..#.. ...#. ....# .....",
  "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
  "^": "..#.. .#.#. #...# ..... ..... ..... .....",
  "_": "..... ..... ..... ..... ..... ..... #####",
  "`": ".#... ..#.. ..... ..... ..... ..... .....",
  "a": "..... ..... .###. ....# .#### #...# .####",
  "b": "#.... #.... #.##. ##..# #...# #...# ####.",
  "c": "..... ..... .###. #.... #.... #...# .###.",
  "d": "....# ....# .##.# #..## #...# #...# .####",
  "e": "..... ..... .###. #...# ##### #.... .###.",
  "f": "..##. .#..# .#... ###.. .#... .#... .#...",
  "g": "..... ..... .#### #...# #...# .#### ....# .###.",
  "h": "#.... #.... #.##. ##..# #...# #...# #...#",
  "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
  "j": "...#. ..... ..##. ...#. ...#. ...#. #..#. .##..",
  "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
  "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  "m": "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",
  "n": "..... ..... #.##. ##..# #...# #...# #...#",
  "o": "..... ..... .###. #...# #...# #...# .###.",
  "p": "..... ..... ####. #...# #...# ####. #.... #....",
  "q": "..... ..... .#### #...# #...# .#### ....# ....#",
  "r": "..... ..... #.##. ##..# #.... #.... #....",
  "s": "..... ..... .###. #.... .###. ....# ####.",
  "t": ".#... .#... ###.. .#... .#... .#..# ..##.",
  "u": "..... ..... #...# #...# #...# #..## .##.#",
  "v": "..... ..... #...# #...# #...# .#.#. ..#..",
  "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.",
  "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
  "y": "..... ..... #...# #...# #...# .#### ....# .###.",
  "z": "..... ..... ##### ...#. ..#.. .#... #####",
  "{": "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
  "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "}": ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
  "~": "..... ..... .#... #.#.# ...#. ..... .....",
};

/** bits[code - 32][row]: bit 4 is the leftmost column. */
let table: Uint8Array[] | undefined;

function glyphTable(): Uint8Array[] {
  if (table) return table;
  const t: Uint8Array[] = [];
  for (let code = 32; code < 127; code++) {
    const src = GLYPHS[String.fromCharCode(code)];
    if (src === undefined) throw new Error(`font: no glyph for ${JSON.stringify(String.fromCharCode(code))}`);
    const rows = src.split(" ");
    if (rows.length < 7 || rows.length > GLYPH_HEIGHT || rows.some((r) => r.length !== GLYPH_WIDTH)) {
      throw new Error(`font: glyph ${JSON.stringify(String.fromCharCode(code))} is not 5 columns by 7-8 rows`);
    }
    const bits = new Uint8Array(GLYPH_HEIGHT);
    rows.forEach((r, y) => {
      let b = 0;
      for (let x = 0; x < GLYPH_WIDTH; x++) b = (b << 1) | (r[x] === "#" ? 1 : 0);
      bits[y] = b;
    });
    t.push(bits);
  }
  return (table = t);
}

/** Row bitmasks of one character's glyph (`?` for anything outside printable ASCII). */
export function glyph(ch: string): Uint8Array {
  const code = ch.charCodeAt(0);
  const t = glyphTable();
  return t[code >= 32 && code < 127 ? code - 32 : 63 - 32]!;
}

/** Width in pixels of `text` drawn at `scale` (no trailing spacing). */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * ADVANCE - 1) * scale;
}

/** Shortens `text` to at most `maxChars` characters, marking the cut with a final `.`. */
export function fitText(text: string, maxChars: number): string {
  if (maxChars <= 0) return "";
  if (text.length <= maxChars) return text;
  if (maxChars === 1) return text.slice(0, 1);
  return text.slice(0, maxChars - 1) + ".";
}

/** An RGB canvas, row-major, 3 bytes per pixel. */
export interface Canvas {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

/**
 * Draws `text` with its top-left corner at (x, y), `scale` pixels per font pixel, clipped to
 * the canvas.
 */
export function drawText(canvas: Canvas, x: number, y: number, text: string, color: readonly [number, number, number], scale = 1): void {
  const { width, height, rgb } = canvas;
  const [r, g, b] = color;
  for (let i = 0; i < text.length; i++) {
    const bits = glyph(text[i]!);
    const gx = x + i * ADVANCE * scale;
    for (let row = 0; row < GLYPH_HEIGHT; row++) {
      const mask = bits[row]!;
      if (mask === 0) continue;
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        if (!(mask & (1 << (GLYPH_WIDTH - 1 - col)))) continue;
        for (let sy = 0; sy < scale; sy++) {
          const py = y + row * scale + sy;
          if (py < 0 || py >= height) continue;
          for (let sx = 0; sx < scale; sx++) {
            const px = gx + col * scale + sx;
            if (px < 0 || px >= width) continue;
            const o = (py * width + px) * 3;
            rgb[o] = r;
            rgb[o + 1] = g;
            rgb[o + 2] = b;
          }
        }
      }
    }
  }
}
