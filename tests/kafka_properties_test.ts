// Kafka client settings as the Java original's files hold them: where they are found, what
// overrides what, how each key maps, and that nothing is ever silently ignored.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { AppConfig, ConfigError, setupLogging } from "../mod.ts";
import { connectorSettings } from "../connector/mod.ts";
import { CLIENT_LIBRARIES, kafkaClientConfig, parseJaasConfig } from "../kafka/properties.ts";
import { kafkaClient } from "../kafka/factory.ts";
import { explainKafkaError, missingTopics } from "../kafka/startup.ts";
import { captureLogs, configDir } from "./_helpers.ts";

const SCRAM = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" ' +
  'password="s3cret";';

function config(files: Record<string, string>, args: string[] = [], env = {}): AppConfig {
  return new AppConfig({ dir: configDir(files), args, env });
}

describe("cloud.client.properties", () => {
  it("reads kafka.properties beside the application's configuration by default", () => {
    const c = kafkaClientConfig(config({
      "kafka.properties": "bootstrap.servers=k1:9093,k2:9093\nsecurity.protocol=SASL_PLAINTEXT\n" +
        `sasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config=${SCRAM}\nclient.id=orders\nacks=all\n`,
    }));
    assert.deepEqual(c.brokers, ["k1:9093", "k2:9093"]);
    assert.equal(c.securityProtocol, "SASL_PLAINTEXT");
    assert.deepEqual(c.sasl, { mechanism: "scram-sha-256", username: "alice", password: "s3cret" });
    assert.equal(c.clientId, "orders");
    assert.equal(c.acks, -1);
    assert.equal(c.tls, undefined);
    assert.match(c.source!, /kafka\.properties$/);
  });

  it("takes the first location that exists, as the Java original does", () => {
    const dir = configDir({ "second.properties": "bootstrap.servers=second:9092\n" });
    const c = kafkaClientConfig(
      new AppConfig({
        dir,
        env: {},
        args: [
          `-Dcloud.client.properties=file:/nonexistent/kafka.properties,classpath:/second.properties`,
        ],
      }),
    );
    assert.deepEqual(c.brokers, ["second:9092"]);
    assert.equal(c.source, join(dir, "second.properties"));
  });

  it("fails at start when the file it names is nowhere, naming the key", () => {
    assert.throws(
      () => kafkaClientConfig(config({}, ["-Dcloud.client.properties=file:/nonexistent/k.props"])),
      (e) => e instanceof ConfigError && e.key === "cloud.client.properties",
    );
  });

  it("precedence: -D flag > environment > the file > application.properties", () => {
    const files = {
      "application.properties": "bootstrap.servers=app:9092\nrequest.timeout.ms=1000\n" +
        "acks=0\n",
      "kafka.properties": "bootstrap.servers=file:9092\nrequest.timeout.ms=2000\n",
    };
    const plain = kafkaClientConfig(config(files));
    assert.deepEqual(plain.brokers, ["file:9092"], "the file over application.properties");
    assert.equal(plain.requestTimeoutMs, 2000);
    assert.equal(plain.acks, 0, "application.properties where the file is silent");
    const env = kafkaClientConfig(config(files, [], { BOOTSTRAP_SERVERS: "env:9092" }));
    assert.deepEqual(env.brokers, ["env:9092"], "the environment over the file");
    const flag = kafkaClientConfig(
      config(files, ["-Dbootstrap.servers=flag:9092"], { BOOTSTRAP_SERVERS: "env:9092" }),
    );
    assert.deepEqual(flag.brokers, ["flag:9092"], "a flag over everything");
  });

  it("resolves ${NAME} in the file, so that a password can come from the environment", () => {
    const c = kafkaClientConfig(config(
      {
        "kafka.properties": "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n" +
          "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required " +
          'username="bob" password="${KAFKA_PASSWORD}";\n',
      },
      [],
      { KAFKA_PASSWORD: "from-env" },
    ));
    assert.deepEqual(c.sasl, { mechanism: "plain", username: "bob", password: "from-env" });
  });

  it("maps TLS in PEM: a trust store file, inline certificates, and no host-name check", () => {
    const files = {
      "ca.pem": "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
      "client.pem":
        "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\n" +
        "C\n-----END CERTIFICATE-----\n",
    };
    const dir = configDir(files);
    const c = kafkaClientConfig(
      new AppConfig({
        dir,
        env: {},
        args: [
          "-Dsecurity.protocol=SSL",
          "-Dssl.truststore.type=PEM",
          `-Dssl.truststore.location=${join(dir, "ca.pem")}`,
          `-Dssl.keystore.location=${join(dir, "client.pem")}`,
          "-Dssl.key.password=kp",
          "-Dssl.endpoint.identification.algorithm=",
          "-Dssl.enabled.protocols=TLSv1.3",
        ],
      }),
    );
    assert.equal(c.tls!.ca, files["ca.pem"]);
    assert.equal(c.tls!.key, files["client.pem"]);
    assert.equal(c.tls!.cert, files["client.pem"]);
    assert.equal(c.tls!.passphrase, "kp");
    assert.equal(c.tls!.verifyHostname, false);
    assert.equal(c.tls!.minVersion, "TLSv1.3");
    assert.equal(c.sasl, undefined);
  });

  it("refuses what the client cannot honour, naming the key", () => {
    const cases: [string, string][] = [
      [
        "security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=/x.jks",
        "ssl.truststore.type",
      ],
      ["security.protocol=SASL_SSL\nsasl.mechanism=GSSAPI", "sasl.mechanism"],
      ["security.protocol=SASL_SSL", "sasl.mechanism"], // Java's default mechanism is GSSAPI
      ["security.protocol=SASL_SSL\nsasl.mechanism=PLAIN", "sasl.jaas.config"],
      [
        `security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config=${SCRAM}`,
        "sasl.jaas.config",
      ],
      [
        "security.protocol=SSL\nssl.truststore.location=/nonexistent/ca.pem",
        "ssl.truststore.location",
      ],
      ["security.protocol=TLS", "security.protocol"],
      ["ssl.truststore.location=/x.pem", "ssl.truststore.location"], // TLS keys without TLS
      ["sasl.mechanism=PLAIN", "security.protocol"],
      [
        "sasl.login.callback.handler.class=com.example.Handler",
        "sasl.login.callback.handler.class",
      ],
      ["enable.idempotence=true", "enable.idempotence"],
      ["acks=2", "acks"],
      ["request.timeout.ms=soon", "request.timeout.ms"],
    ];
    for (const [text, key] of cases) {
      assert.throws(
        () => kafkaClientConfig(config({ "kafka.properties": text + "\n" })),
        (e) => e instanceof ConfigError && e.key === key,
        `${JSON.stringify(text)} should fail naming ${key}`,
      );
    }
    // A password never appears in the error.
    try {
      kafkaClientConfig(config({
        "kafka.properties":
          `security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config=${SCRAM}\n`,
      }));
    } catch (e) {
      assert.doesNotMatch((e as Error).message, /s3cret/);
    }
  });

  it("warns, naming them, about keys without effect and unknown keys", async () => {
    await setupLogging("warning");
    const logs = await captureLogs();
    try {
      kafkaClientConfig(config({
        "kafka.properties":
          "bootstrap.servers=k:9092\nkey.serializer=org.x.S\nbootstrap.server=typo\n",
      }));
    } finally {
      await logs.stop();
    }
    const text = logs.lines.join("\n");
    assert.match(text, /key.serializer has no effect/);
    assert.match(text, /unknown Kafka client key bootstrap.server\b/);
  });

  it("kafka.replication.factor: 3 by default, at most 3", () => {
    assert.equal(kafkaClientConfig(config({})).replicationFactor, 3);
    assert.equal(
      kafkaClientConfig(config({}, ["-Dkafka.replication.factor=5"])).replicationFactor,
      3,
    );
    assert.equal(
      kafkaClientConfig(config({}, ["-Dkafka.replication.factor=2"])).replicationFactor,
      2,
    );
    assert.throws(
      () => kafkaClientConfig(config({}, ["-Dkafka.replication.factor=0"])),
      ConfigError,
    );
  });

  it("kafka.topics: on-demand by default, or pre-allocated", () => {
    assert.equal(kafkaClientConfig(config({})).topics, "on-demand");
    assert.equal(
      kafkaClientConfig(config({}, ["-Dkafka.topics=pre-allocated"])).topics,
      "pre-allocated",
    );
    assert.throws(() => kafkaClientConfig(config({}, ["-Dkafka.topics=never"])), ConfigError);
  });
});

describe("OAUTHBEARER", () => {
  it("needs the application's token source, and says where to give it", async () => {
    const c = kafkaClientConfig(config({
      "kafka.properties": "security.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER\n" +
        "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule " +
        "required;\n",
    }));
    assert.deepEqual(c.sasl, { mechanism: "oauthbearer" });
    for (const client of CLIENT_LIBRARIES) {
      assert.throws(
        () => kafkaClient({ ...c, client }, "app"),
        (e) => e instanceof ConfigError && /oauthBearer/.test(e.message),
        client,
      );
      const link = kafkaClient({ ...c, client }, "app", () => Promise.resolve({ value: "token" }));
      await link.close(); // nothing connected: constructing it is what is checked
    }
  });
});

describe("presence.properties", () => {
  it("gives the monitors' URLs as url, between the environment and application.properties", () => {
    const files = {
      "application.properties": "presence.url=ws://app:8080/ws/presence\n",
      "presence.properties": "url=ws://m1:8080/ws/presence, ws://m2:8080/ws/presence\n",
    };
    assert.deepEqual(connectorSettings(config(files)).presenceUrls, [
      "ws://m1:8080/ws/presence",
      "ws://m2:8080/ws/presence",
    ]);
    assert.deepEqual(
      connectorSettings(config(files, [], { PRESENCE_URL: "ws://env:8080/ws/presence" }))
        .presenceUrls,
      ["ws://env:8080/ws/presence"],
    );
    assert.deepEqual(
      connectorSettings(config({ "application.properties": files["application.properties"] }))
        .presenceUrls,
      ["ws://app:8080/ws/presence"],
    );
  });
});

describe("parseJaasConfig", () => {
  it("reads PLAIN and SCRAM lines, quoted and escaped values; refuses other modules", () => {
    assert.deepEqual(parseJaasConfig(SCRAM), {
      module: "scram",
      username: "alice",
      password: "s3cret",
    });
    assert.deepEqual(
      parseJaasConfig(
        'org.apache.kafka.common.security.plain.PlainLoginModule required username=u password="p;q";',
      ),
      { module: "plain", username: "u", password: "p;q" },
    );
    assert.throws(
      () =>
        parseJaasConfig("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;"),
      /Krb5LoginModule/,
    );
    assert.throws(
      () => parseJaasConfig("org.apache.kafka.common.security.plain.PlainLoginModule required;"),
      ConfigError,
    );
  });
});

describe("start-up checks", () => {
  it("lists missing topics and topics with too few partitions", () => {
    const have = new Map([["service.monitor", 11], ["multiplex.0001", 16]]);
    assert.deepEqual(
      missingTopics(have, [["service.monitor", 11], ["multiplex.0001", 32], [
        "multiplex.0002",
        32,
      ]]),
      [
        "multiplex.0001 (has 16 partitions; needs 32)",
        "multiplex.0002 (missing; needs 32 partitions)",
      ],
    );
  });

  it("explains a refused connection and bad credentials by the setting to check", () => {
    const c = {
      brokers: ["k:9092"],
      securityProtocol: "SASL_SSL" as const,
      source: "/etc/k.props",
    };
    assert.match(
      explainKafkaError(new Error("connect ECONNREFUSED 127.0.0.1:9092"), c),
      /No broker answers at k:9092 .*bootstrap.servers \(\/etc\/k.props\)/,
    );
    assert.match(
      explainKafkaError(new Error("self-signed certificate in certificate chain"), c),
      /TLS to k:9092 failed.*ssl.truststore.location/,
    );
  });
});
