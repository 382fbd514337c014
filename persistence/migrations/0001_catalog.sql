-- The catalog of SPEC §4: prices in minor units; each SKU names its artifact.
CREATE TABLE catalog_items (
  sku             text PRIMARY KEY CHECK (sku ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
  title           text NOT NULL,
  unit_amount     bigint NOT NULL CHECK (unit_amount > 0),
  currency        text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  artifact_url    text NOT NULL,
  artifact_sha256 text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$')
);

INSERT INTO catalog_items (sku, title, unit_amount, currency, artifact_url, artifact_sha256) VALUES
  ('creator-basic', 'Creator Basic', 1200, 'usd',
   'https://artifacts.artifact-publisher.invalid/creator-basic/1.0.0.tar.gz',
   '55efdfc37a34ece0bd2bb04fc7ae6708ebda7988e2b637fd43370e9d374a7052'),
  ('creator-pro', 'Creator Pro', 2500, 'usd',
   'https://artifacts.artifact-publisher.invalid/creator-pro/1.0.0.tar.gz',
   'ed8d65e2ede091ac36104f06a93281410a451e32de0ee99e38dd9c64a5a9d855'),
  ('artifact-license', 'Artifact License', 800, 'usd',
   'https://artifacts.artifact-publisher.invalid/artifact-license/1.0.0.tar.gz',
   'f81c750b02ca4c5e7c1a54adf8c1ab821eb7e0c712945c780ba2601a4ac77f16'),
  ('artifact-compliance', 'Artifact Compliance', 450, 'usd',
   'https://artifacts.artifact-publisher.invalid/artifact-compliance/1.0.0.tar.gz',
   '6a489e443c77aa471490052d840dbacf62e5cfabdd423a91cfd4ce195b94270b');
