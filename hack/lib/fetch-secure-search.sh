#!/usr/bin/env bash
# Usage: fetch-secure-search.sh OUT JDK
# Readies opensearch-secure in OUT (a cache folder keyed by version), as
# fetch-search.sh readies the plain search servers: OUT/libs, the OpenSearch
# server's runtime classpath from Maven Central; OUT/security, the security
# plugin's zip from Maven Central, unpacked; and OUT/launcher,
# hack/search/SecureOpenSearchNode.java compiled against both with JDK/bin/javac.
# A script of its own so that adding it left fetch-search.sh, whose digest the
# three plain servers' definitions include, unchanged.
# OUT/launcher.digest records what it was built from; when that matches this
# checkout the script returns at once, so hack/stack calls it on every start.
set -euo pipefail
out=$1
jdk=$2
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
source=SecureOpenSearchNode.java
version=$OPENSEARCH_SECURE_VERSION
security_zip=org.opensearch.plugin:opensearch-security:$OPENSEARCH_SECURITY_VERSION:zip

say() { printf '[stack] %s\n' "$*" >&2; }

digest=$(cat "$here/search/$source" "$here/lib/fetch-secure-search.sh" \
  <(echo "$version $OPENSEARCH_SECURITY_VERSION $OPENSEARCH_SECURE_LOG4J_VERSION $OPENSEARCH_SECURE_COLLECTIONS4_VERSION") |
  sha256sum | cut -d' ' -f1)
up_to_date() {
  [ -d "$out/libs" ] && [ -d "$out/security" ] && [ "$(cat "$out/launcher.digest" 2>/dev/null)" = "$digest" ]
}
up_to_date && exit 0

mkdir -p "$out"
# Two clones may start it at once: one fetches, the other waits and reuses.
exec 9>"$out/.lock"
flock 9
up_to_date && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -d "$out/libs" ] || [ ! -d "$out/security" ]; then
  # The server's own jars (not codelibs' runner, which brings 3.8.0), its HTTP/transport and
  # reindex modules' client artifacts, log4j-core (the server declares it optional; it must
  # match the log4j-api 3.4.0 pulls in), and commons-collections4, which in a distribution
  # the plugin sees through a module (autotagging-commons) Maven Central does not have.
  cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.infometis.local</groupId>
  <artifactId>opensearch-secure-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.opensearch.plugin</groupId><artifactId>transport-netty4-client</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.opensearch.plugin</groupId><artifactId>reindex-client</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$OPENSEARCH_SECURE_LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.commons</groupId><artifactId>commons-collections4</artifactId><version>$OPENSEARCH_SECURE_COLLECTIONS4_VERSION</version></dependency>
  </dependencies>
</project>
POM
  say "downloading OpenSearch $version and its dependencies from Maven Central"
  mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$work/libs"
  say "downloading the security plugin ($security_zip)"
  mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy -Dartifact="$security_zip" -DoutputDirectory="$work"
  mkdir "$work/security"
  unzip -q "$work"/opensearch-security-*.zip -d "$work/security"
  # One copy of each library on the class path: where the plugin brings its own
  # version of a jar the server also pulls in (commons-codec, slf4j-api, netty),
  # the plugin's is kept, as in its own class loader in a distribution.
  for jar in "$work"/security/*.jar; do
    artifact=$(basename "$jar" | sed -E 's/-[0-9][A-Za-z0-9._-]*\.jar$//')
    for duplicate in "$work"/libs/"$artifact"-[0-9]*.jar; do
      if [ -e "$duplicate" ]; then rm "$duplicate"; fi
    done
  done
  rm -rf "$out/libs" "$out/security" && mv "$work/libs" "$out/libs" && mv "$work/security" "$out/security"
fi
say "compiling the opensearch-secure launcher (hack/search/$source)"
"$jdk/bin/javac" -proc:none -nowarn --release 21 -cp "$out/libs/*:$out/security/*" -d "$work/classes" \
  "$here/search/$source"
rm -rf "$out/launcher" && mv "$work/classes" "$out/launcher"
echo "$digest" > "$out/launcher.digest"
say "opensearch-secure (OpenSearch $version, security $OPENSEARCH_SECURITY_VERSION) ready in $out" \
  "($(ls "$out/libs" "$out/security" | grep -c '\.jar$') jars, ${SECONDS}s)"
