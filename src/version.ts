import pkg from "../package.json" with { type: "json" };

// Replaced by build.ts (`define`) in compiled binaries; from source they are not defined.
declare const FLEETCRON_BUILD_TARGET: string | undefined;
declare const FLEETCRON_GIT_REVISION: string | undefined;

export const VERSION: string = pkg.version;
export const BUILD_TARGET: string = typeof FLEETCRON_BUILD_TARGET === "string" ? FLEETCRON_BUILD_TARGET : `${process.platform}-${process.arch} (source)`;
export const GIT_REVISION: string | null = typeof FLEETCRON_GIT_REVISION === "string" && FLEETCRON_GIT_REVISION ? FLEETCRON_GIT_REVISION : null;

export function versionLine(): string {
  return `fleetcron ${VERSION}${GIT_REVISION ? ` (${GIT_REVISION})` : ""} ${BUILD_TARGET}`;
}
