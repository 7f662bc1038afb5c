#!/usr/bin/env bun
/**
 * `bun scripts/pe-check.ts FILE.exe [--json]`: is FILE a well-formed PE32+ x64 console executable
 * that needs nothing beyond Windows' own DLLs? Wine cannot start a Bun-compiled exe on these
 * machines (issue 17), so this is how CI checks the Windows build: a reader of the PE format
 * (Microsoft's "PE Format" specification) for the headers, sections, import and delay-import
 * tables and the Authenticode certificate table. Exits 1 with the reasons when a check fails.
 */
import { readFileSync } from "node:fs";

const IMAGE_FILE_MACHINE_AMD64 = 0x8664;
const PE32_PLUS = 0x20b;
const IMAGE_SUBSYSTEM_WINDOWS_CUI = 3;
const IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002;
const IMAGE_FILE_DLL = 0x2000;
const DIRECTORY = { import: 1, security: 4, delayImport: 13 } as const;

/**
 * DLLs every supported Windows (10 and later, Server 2016 and later) has in System32. Anything
 * else — the Visual C++ runtime (vcruntime140.dll, msvcp140.dll) above all — would make the exe
 * fail to start on a clean machine with "the code execution cannot proceed".
 */
export const SYSTEM_DLLS = new Set(
  [
    "advapi32", "bcrypt", "bcryptprimitives", "cfgmgr32", "comctl32", "comdlg32", "crypt32", "dbghelp", "dnsapi", "gdi32",
    "imm32", "iphlpapi", "kernel32", "kernelbase", "mswsock", "ncrypt", "netapi32", "normaliz", "ntdll", "ole32",
    "oleaut32", "powrprof", "psapi", "rpcrt4", "secur32", "setupapi", "shell32", "shlwapi", "ucrtbase", "user32",
    "userenv", "version", "winhttp", "winmm", "wintrust", "wldap32", "ws2_32", "wsock32",
  ].map((n) => `${n}.dll`),
);

/** API sets (api-ms-win-*, ext-ms-win-*) are resolved by the loader to system DLLs. */
export function isSystemDll(name: string): boolean {
  const lower = name.toLowerCase();
  return SYSTEM_DLLS.has(lower) || /^(api|ext)-ms-win-[a-z0-9-]+\.dll$/.test(lower);
}

export interface PeSection {
  name: string;
  virtualAddress: number;
  virtualSize: number;
  rawOffset: number;
  rawSize: number;
}

export interface PeReport {
  machine: number;
  magic: number;
  subsystem: number;
  characteristics: number;
  entryPoint: number;
  sections: PeSection[];
  imports: string[];
  delayImports: string[];
  /** The certificate table holds a PKCS#7 (Authenticode) signature. */
  signed: boolean;
  problems: string[];
}

class PeError extends Error {}

export function inspectPe(bytes: Uint8Array): PeReport {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (offset: number, length: number, what: string) => {
    if (offset < 0 || offset + length > bytes.length) throw new PeError(`${what} lies outside the file (offset ${offset}, ${length} bytes, file ${bytes.length} bytes)`);
  };
  const u16 = (o: number) => (need(o, 2, "a header field"), view.getUint16(o, true));
  const u32 = (o: number) => (need(o, 4, "a header field"), view.getUint32(o, true));
  const cString = (o: number, what: string) => {
    need(o, 1, what);
    let end = o;
    while (end < bytes.length && bytes[end] !== 0 && end - o < 256) end++;
    if (bytes[end] !== 0) throw new PeError(`${what} is not a terminated string`);
    return new TextDecoder("latin1").decode(bytes.subarray(o, end));
  };

  if (bytes.length < 64 || bytes[0] !== 0x4d || bytes[1] !== 0x5a) throw new PeError('no "MZ" DOS header: not a Windows executable');
  const pe = u32(0x3c);
  if (u32(pe) !== 0x00004550) throw new PeError(`no "PE\\0\\0" signature at offset ${pe}`);
  const coff = pe + 4;
  const machine = u16(coff);
  const sectionCount = u16(coff + 2);
  const optionalSize = u16(coff + 16);
  const characteristics = u16(coff + 18);
  const opt = coff + 20;
  const magic = u16(opt);
  const problems: string[] = [];
  if (machine !== IMAGE_FILE_MACHINE_AMD64) problems.push(`machine is 0x${machine.toString(16)}, not x64 (0x8664)`);
  if (magic !== PE32_PLUS) throw new PeError(`optional header magic is 0x${magic.toString(16)}, not PE32+ (0x20b)`);
  if ((characteristics & IMAGE_FILE_EXECUTABLE_IMAGE) === 0) problems.push("not marked as an executable image");
  if (characteristics & IMAGE_FILE_DLL) problems.push("marked as a DLL, not an executable");
  const entryPoint = u32(opt + 16);
  const imageBase = view.getBigUint64((need(opt + 24, 8, "ImageBase"), opt + 24), true);
  const subsystem = u16(opt + 68);
  if (subsystem !== IMAGE_SUBSYSTEM_WINDOWS_CUI) problems.push(`subsystem is ${subsystem}, not a console program (3): it would open no console and print nothing`);
  const directoryCount = u32(opt + 108);
  const directory = (index: number) => (index < directoryCount ? { address: u32(opt + 112 + index * 8), size: u32(opt + 116 + index * 8) } : { address: 0, size: 0 });

  const sections: PeSection[] = [];
  const table = opt + optionalSize;
  for (let i = 0; i < sectionCount; i++) {
    const s = table + i * 40;
    need(s, 40, `section header ${i}`);
    const section = {
      name: cStringFixed(bytes.subarray(s, s + 8)),
      virtualSize: u32(s + 8),
      virtualAddress: u32(s + 12),
      rawSize: u32(s + 16),
      rawOffset: u32(s + 20),
    };
    if (section.rawSize > 0 && section.rawOffset + section.rawSize > bytes.length) problems.push(`section ${section.name} runs past the end of the file (truncated download?)`);
    sections.push(section);
  }
  const toOffset = (rva: number, what: string) => {
    const section = sections.find((s) => rva >= s.virtualAddress && rva < s.virtualAddress + Math.max(s.virtualSize, s.rawSize));
    if (!section) throw new PeError(`${what} (RVA 0x${rva.toString(16)}) is in no section`);
    return section.rawOffset + (rva - section.virtualAddress);
  };
  if (!sections.some((s) => entryPoint >= s.virtualAddress && entryPoint < s.virtualAddress + Math.max(s.virtualSize, s.rawSize))) problems.push("the entry point is in no section");

  const imports: string[] = [];
  const importDir = directory(DIRECTORY.import);
  if (importDir.address) {
    for (let d = toOffset(importDir.address, "the import table"); ; d += 20) {
      need(d, 20, "an import descriptor");
      if (u32(d) === 0 && u32(d + 12) === 0 && u32(d + 16) === 0) break;
      imports.push(cString(toOffset(u32(d + 12), "an import's DLL name"), "an import's DLL name"));
    }
  }
  const delayImports: string[] = [];
  const delayDir = directory(DIRECTORY.delayImport);
  if (delayDir.address) {
    for (let d = toOffset(delayDir.address, "the delay-import table"); ; d += 32) {
      need(d, 32, "a delay-import descriptor");
      const attributes = u32(d);
      const nameRef = u32(d + 4);
      if (attributes === 0 && nameRef === 0) break;
      // Version 1 descriptors (attributes bit 0 clear) hold virtual addresses, not RVAs.
      const nameRva = attributes & 1 ? nameRef : Number(BigInt(nameRef) - imageBase);
      delayImports.push(cString(toOffset(nameRva, "a delay-import's DLL name"), "a delay-import's DLL name"));
    }
  }
  if (imports.length === 0) problems.push("imports nothing (not even kernel32.dll): not a normal Windows program");
  for (const dll of [...imports, ...delayImports]) if (!isSystemDll(dll)) problems.push(`imports ${dll}, which is not a Windows system DLL (a clean machine would refuse to start it)`);

  // The certificate table's entry is a file offset, not an RVA (it is not loaded into memory).
  const security = directory(DIRECTORY.security);
  let signed = false;
  if (security.address && security.size) {
    need(security.address, 8, "the certificate table");
    const revision = u16(security.address + 4);
    const type = u16(security.address + 6);
    signed = revision === 0x0200 && type === 0x0002;
    if (security.address + security.size > bytes.length) problems.push("the certificate table runs past the end of the file");
  }
  return { machine, magic, subsystem, characteristics, entryPoint, sections, imports, delayImports, signed, problems };
}

function cStringFixed(raw: Uint8Array): string {
  const end = raw.indexOf(0);
  return new TextDecoder("latin1").decode(end === -1 ? raw : raw.subarray(0, end));
}

/** The report, with the reason the bytes are not a readable PE32+ at all as its problem. */
export function checkPe(bytes: Uint8Array): PeReport {
  try {
    return inspectPe(bytes);
  } catch (error) {
    if (!(error instanceof PeError)) throw error;
    return { machine: 0, magic: 0, subsystem: 0, characteristics: 0, entryPoint: 0, sections: [], imports: [], delayImports: [], signed: false, problems: [error.message] };
  }
}

export function checkPeFile(path: string): PeReport {
  return checkPe(readFileSync(path));
}

if (import.meta.main) {
  const [path, ...rest] = process.argv.slice(2);
  if (!path) {
    console.error("usage: bun scripts/pe-check.ts FILE.exe [--json]");
    process.exit(2);
  }
  const report = checkPeFile(path);
  if (rest.includes("--json")) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(`${path}: ${report.problems.length ? "NOT OK" : "ok"}`);
    console.log(`  PE32+ ${report.magic === PE32_PLUS ? "yes" : "no"}, machine 0x${report.machine.toString(16)}, subsystem ${report.subsystem}${report.subsystem === 3 ? " (console)" : ""}, ${report.sections.length} sections, ${report.signed ? "Authenticode-signed" : "unsigned"}`);
    console.log(`  imports: ${report.imports.join(", ") || "(none)"}`);
    console.log(`  delay-loaded: ${report.delayImports.join(", ") || "(none)"}`);
    for (const problem of report.problems) console.log(`  problem: ${problem}`);
  }
  process.exit(report.problems.length ? 1 : 0);
}
