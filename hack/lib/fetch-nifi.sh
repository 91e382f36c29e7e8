#!/usr/bin/env bash
# Usage: fetch-nifi.sh OUT JDK
# Assembles Apache NiFi in OUT (a cache folder keyed by version) from Maven
# Central, which serves no NiFi distribution: OUT/lib holds the jars NiFi's own
# lib/ folder holds (its launcher class, logging, the APIs the framework and
# extensions share) and the framework NARs, and the two extension NARs the
# stack's flows need, nifi-standard-nar and nifi-update-attribute-nar, which
# are not published: they are built here with nifi-nar-maven-plugin from the
# published processor jars, under the official coordinates, so a flow
# definition's bundle (org.apache.nifi:nifi-standard-nar:VERSION) resolves to
# them. The plugin also writes the extension manifest NiFi's REST API reads
# (docs/local-stack.md, "Apache NiFi").
# NiFi 2 and the NAR plugin need Java 21+: Maven runs the plugin on JDK (its
# classes are compiled for 21, and it loads the processors to describe them).
# OUT/lib.digest records what OUT/lib was assembled from; when that matches
# this checkout the script returns at once, so hack/stack calls it on every start.
set -euo pipefail
out=$1
jdk=$2
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
version=$NIFI_VERSION

say() { printf '[stack] %s\n' "$*" >&2; }

digest=$(cat "$here/lib/fetch-nifi.sh" \
  <(echo "$version $NIFI_API_VERSION $NIFI_NAR_PLUGIN_VERSION $NIFI_SLF4J_VERSION $NIFI_LOGBACK_VERSION") |
  sha256sum | cut -d' ' -f1)
up_to_date() { [ -d "$out/lib" ] && [ "$(cat "$out/lib.digest" 2>/dev/null)" = "$digest" ]; }
up_to_date && exit 0

mkdir -p "$out"
# Two clones may start it at once: one assembles, the other waits and reuses.
exec 9>"$out/.lock"
flock 9
up_to_date && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mvn_quiet() { mvn -q -B -Dstyle.color=never "$@"; }

# One dependency with every transitive one excluded: lib/ is a flat list, and
# Maven would otherwise walk poms of NiFi's build that are not published (it
# fails on them even with -DexcludeTransitive=true).
dependency() { # GROUP ARTIFACT VERSION [TYPE]
  printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version><type>%s</type>' \
    "$1" "$2" "$3" "${4:-jar}"
  printf '<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>\n'
}
lib_dependencies() {
  for artifact in slf4j-api log4j-over-slf4j jcl-over-slf4j jul-to-slf4j; do
    dependency org.slf4j "$artifact" "$NIFI_SLF4J_VERSION"
  done
  for artifact in logback-classic logback-core; do
    dependency ch.qos.logback "$artifact" "$NIFI_LOGBACK_VERSION"
  done
  dependency org.apache.nifi nifi-api "$NIFI_API_VERSION"
  for artifact in nifi-framework-api nifi-nar-utils nifi-properties nifi-property-utils \
    nifi-python-framework-api nifi-runtime nifi-server-api nifi-stateless-api; do
    dependency org.apache.nifi "$artifact" "$version"
  done
  # The framework (web API, flow engine), its web server, the provenance repository, and
  # the NARs the standard NARs descend from or whose services they use.
  for artifact in nifi-framework-nar nifi-jetty-nar nifi-server-nar nifi-provenance-repository-nar \
    nifi-standard-services-api-nar nifi-standard-shared-nar nifi-ssl-context-service-nar \
    nifi-record-serialization-services-nar; do
    dependency org.apache.nifi "$artifact" "$version" nar
  done
}

# A NAR of ours under an official NAR's coordinates: the published processor jar and its
# runtime dependencies, with nifi-standard-shared-nar as parent (its class loader provides
# the standard services' APIs and the libraries they share, as in the official NARs). The
# BOMs the official bundle poms import give the same versions and `provided` scopes.
build_nar() { # ARTIFACT PROCESSOR-JAR
  mkdir -p "$work/$1"
  cat > "$work/$1/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.apache.nifi</groupId>
  <artifactId>$1</artifactId>
  <version>$version</version>
  <packaging>nar</packaging>
  <properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <dependencyManagement>
    <dependencies>
      <dependency><groupId>org.apache.nifi</groupId><artifactId>nifi-standard-shared-bom</artifactId><version>$version</version><type>pom</type><scope>import</scope></dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency><groupId>org.apache.nifi</groupId><artifactId>nifi-standard-shared-nar</artifactId><version>$version</version><type>nar</type></dependency>
    <dependency><groupId>org.apache.nifi</groupId><artifactId>$2</artifactId><version>$version</version></dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.nifi</groupId>
        <artifactId>nifi-nar-maven-plugin</artifactId>
        <version>$NIFI_NAR_PLUGIN_VERSION</version>
        <extensions>true</extensions>
      </plugin>
    </plugins>
  </build>
</project>
POM
  say "building $1 $version from $2 $version"
  # `package`, never `install`: the NAR stays out of ~/.m2, where it would pass for the official one.
  # Maven 3.8's bundled Guava uses sun.misc.Unsafe, which Java 24+ warns about on every run.
  JAVA_HOME=$jdk MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" mvn_quiet -f "$work/$1/pom.xml" package
  cp "$work/$1/target/$1-$version.nar" "$work/lib/"
}

cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.infometis.local</groupId>
  <artifactId>nifi-lib</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$(lib_dependencies)
  </dependencies>
</project>
POM
say "downloading NiFi $version's lib/ jars and framework NARs from Maven Central"
mvn_quiet -f "$work/pom.xml" dependency:copy-dependencies -DoutputDirectory="$work/lib"
build_nar nifi-standard-nar nifi-standard-processors
build_nar nifi-update-attribute-nar nifi-update-attribute-processor
rm -rf "$out/lib" && mv "$work/lib" "$out/lib"
echo "$digest" > "$out/lib.digest"
say "NiFi $version ready in $out ($(ls "$out/lib" | grep -c '\.jar$') jars, $(ls "$out/lib" | grep -c '\.nar$') NARs," \
  "$(du -sm "$out/lib" | cut -f1) MB, ${SECONDS}s)"
