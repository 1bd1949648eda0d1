WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL
    OR "o"."created_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "o_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    SUM(CASE WHEN "o"."status" = 'paid' THEN "o"."total" END) AS "a0",
    COUNT(*) AS "a1"
  FROM "vo" AS "o"
  GROUP BY
    "o"."customer_id"
)
SELECT
  COALESCE("c"."id", "o_agg"."customer_id") AS "customer_id"
FROM "customers" AS "c"
FULL JOIN "o_agg"
  ON "o_agg"."customer_id" = "c"."id"
WHERE
  NOT COALESCE("c"."id", "o_agg"."customer_id") IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
  )
  AND (
    CASE
      WHEN NOT TRY_CAST(COALESCE("o_agg"."a0", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(12, 6)) IS NULL
      AND NOT TRY_CAST(COALESCE("o_agg"."a1", 0) AS DECIMAL(12, 6)) IS NULL
      THEN CASE
        WHEN CAST(COALESCE("o_agg"."a1", 0) AS BIGINT) = 0
        THEN NULL
        ELSE CAST((
          2 * CAST(CAST(COALESCE("o_agg"."a0", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(12, 6)) * 1000000 AS BIGINT) + SIGN(
            CAST(CAST(COALESCE("o_agg"."a0", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(12, 6)) * 1000000 AS BIGINT)
          ) * ABS(CAST(COALESCE("o_agg"."a1", 0) AS BIGINT))
        ) // (
          2 * CAST(COALESCE("o_agg"."a1", 0) AS BIGINT)
        ) AS DECIMAL(12, 0)) * CAST(0.000001 AS DECIMAL(6, 6))
      END
      ELSE CASE
        WHEN CAST(COALESCE("o_agg"."a1", 0) AS INT128) = 0
        THEN NULL
        ELSE CAST((
          2 * CAST(CAST(COALESCE("o_agg"."a0", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(38, 6)) * 1000000 AS INT128) + SIGN(
            CAST(CAST(COALESCE("o_agg"."a0", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(38, 6)) * 1000000 AS INT128)
          ) * ABS(CAST(COALESCE("o_agg"."a1", 0) AS INT128))
        ) // (
          2 * CAST(COALESCE("o_agg"."a1", 0) AS INT128)
        ) AS DECIMAL(38, 0)) * CAST(0.000001 AS DECIMAL(38, 6))
      END
    END > 10.5
    AND ROUND("c"."score", 1) = 2.5
    AND "c"."score" % NULLIF(2, 0) = 1
    AND -(
      "c"."score"
    ) < 0
  )
