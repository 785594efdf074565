#!/usr/bin/env bash
# Installs what sigkit needs from Debian when it is missing: R 4.2 with the
# packages the cross-checks use, and Chromium for the report's browser tests.
# Run as root, or as a user with password-less sudo. Otherwise it prints the
# apt-get command for an administrator and exits non-zero.
set -euo pipefail

R_PACKAGES=(r-base-core r-base-dev r-cran-survival r-cran-rms r-cran-glmnet r-cran-mass
            r-cran-psych r-cran-riskregression r-cran-mice)
BROWSER_PACKAGES=(chromium chromium-driver)
R_CHECK='for (p in c("survival","rms","glmnet","MASS","psych","riskRegression","mice")) if (!requireNamespace(p, quietly=TRUE)) quit(status=1)'

r_ok() {
    command -v Rscript >/dev/null 2>&1 &&
        Rscript -e "$R_CHECK" >/dev/null 2>&1
}
browser_ok() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

missing=()
r_ok || missing+=("${R_PACKAGES[@]}")
browser_ok || missing+=("${BROWSER_PACKAGES[@]}")
if [ ${#missing[@]} -eq 0 ]; then
    echo "system dependencies: R packages and Chromium present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    cat >&2 <<MSG
sigkit needs these Debian packages, and this user cannot install them:
    ${missing[*]}
Ask an administrator to run:
    apt-get update && apt-get install -y ${missing[*]}
then run 'make test' again. (R must be >= 4.2; rpy2 is pinned to 3.5.x for R < 4.4.)
MSG
    exit 1
fi

echo "installing from Debian: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
r_ok || { echo "R packages still missing after apt-get" >&2; exit 1; }
