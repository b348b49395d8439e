import type { Command } from "commander";
import { SETTING_DOCS, SETTING_KEYS, type SettingDoc } from "../config/index.js";

const WIDTH = 80;
const INDENT = "      ";

/**
 * The help's settings section, made from the settings module's table (`config/setting-docs.ts`), which the
 * README's settings table also lists: each setting's names, what it does, what it accepts and its default.
 */
export function settingsHelp(): string {
  const lines = ['Settings (flag > environment > package.json "cachet" > default):'];
  for (const key of SETTING_KEYS) {
    const doc = SETTING_DOCS[key];
    lines.push(`  ${settingNames(doc).join(", ")}`);
    const text = `${capitalize(doc.does)}. Accepts ${doc.accepted}. Default: ${doc.default}.`;
    for (const line of wrap(text, WIDTH - INDENT.length)) lines.push(`${INDENT}${line}`);
  }
  return lines.join("\n");
}

/** How a setting is set: its environment variable, flag and package.json field. */
export function settingNames(doc: SettingDoc): string[] {
  const names = [doc.env];
  if (doc.flag) names.push(doc.flag);
  if (doc.packageJson) names.push(`package.json "cachet.${doc.packageJson}"`);
  return names;
}

/** The commands under `parent` with their arguments, as the README's CLI table lists them (`cache clean [names...]`). */
export function subcommandsHelp(parent: Command): string {
  const rows = parent.commands.map((command) => [`${parent.name()} ${command.name()} ${command.usage()}`.trim(), command.description()] as const);
  const width = Math.max(...rows.map(([usage]) => usage.length)) + 2;
  const lines = [`${capitalize(parent.name())} commands:`];
  for (const [usage, description] of rows) {
    const [first = "", ...rest] = wrap(description, Math.max(20, WIDTH - 2 - width));
    lines.push(`  ${usage.padEnd(width)}${first}`);
    for (const line of rest) lines.push(`  ${" ".repeat(width)}${line}`);
  }
  return lines.join("\n");
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}
