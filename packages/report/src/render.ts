/**
 * Rendering of vega-lite specs to SVG (vega's headless `toSVG`) and PNG (resvg), with no browser.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** The font family every chart sets, so that the SVG and the PNG agree on the face. */
export const CHART_FONT = 'DejaVu Sans';

/** The font files resvg needs: DejaVu Sans regular and bold. */
const FONT_FILE_NAMES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'];

/** Folders where Linux distributions and Homebrew put the DejaVu fonts. */
const FONT_DIRECTORIES = [
  '/usr/share/fonts/truetype/dejavu',
  '/usr/share/fonts/dejavu',
  '/usr/share/fonts/TTF',
  '/usr/share/fonts/dejavu-sans-fonts',
  '/opt/homebrew/share/fonts',
  '/usr/local/share/fonts',
];

/**
 * Returns the DejaVu Sans font files (regular and bold) from the first folder that has both.
 *
 * @throws when no folder has them, naming the folders searched and the package to install.
 */
export function findChartFonts(): string[] {
  for (const directory of FONT_DIRECTORIES) {
    const files = FONT_FILE_NAMES.map((name) => join(directory, name));
    if (files.every((file) => existsSync(file))) return files;
  }
  throw new Error(
    `DejaVu Sans fonts not found: looked for ${FONT_FILE_NAMES.join(' and ')} in ${FONT_DIRECTORIES.join(', ')}. ` +
      'Install them (Debian and Ubuntu: apt-get install fonts-dejavu-core) or pass fontFiles.',
  );
}

/** Renders a vega-lite spec to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A rendered PNG with its pixel size. */
export interface RenderedPng {
  png: Buffer;
  width: number;
  height: number;
}

/**
 * Renders an SVG document to PNG with the given font files and no system fonts, so the output does
 * not depend on what else the machine has installed.
 *
 * @param scale pixels per SVG unit (default 2, sharp on high-density screens).
 */
export function renderPng(svg: string, fontFiles: string[], scale = 2): RenderedPng {
  if (!(scale > 0)) throw new Error(`renderPng: scale is ${scale}; it must be a positive number.`);
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: false, fontFiles, defaultFontFamily: CHART_FONT },
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
  });
  const image = resvg.render();
  return { png: image.asPng(), width: image.width, height: image.height };
}
