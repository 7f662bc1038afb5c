import { launchd } from "./launchd.ts";
import type { ServiceGenerator, ServicePlatform } from "./shared.ts";
import { systemd } from "./systemd.ts";
import { windowsTask } from "./windows.ts";

export const GENERATORS: Record<ServicePlatform, ServiceGenerator> = { linux: systemd, darwin: launchd, windows: windowsTask };

/** The service platform of this machine, or null where FleetCron has no service manager support. */
export function hostPlatform(platform: NodeJS.Platform = process.platform): ServicePlatform | null {
  return platform === "linux" ? "linux" : platform === "darwin" ? "darwin" : platform === "win32" ? "windows" : null;
}

export * from "./shared.ts";
