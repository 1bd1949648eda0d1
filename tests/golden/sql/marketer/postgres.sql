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
), "top0" AS (
  SELECT
    "customer_id",
    "value"
  FROM (
    SELECT
      "o"."customer_id" AS "customer_id",
      "o"."total" AS "value",
      ROW_NUMBER() OVER (
        PARTITION BY "o"."customer_id"
        ORDER BY "o"."created_at" ASC, (
          COALESCE("o"."id", '')
        ) COLLATE "C", "o"."total"
      ) AS "rn"
    FROM "vo" AS "o"
    WHERE
      NOT "o"."created_at" IS NULL AND NOT "o"."total" IS NULL AND "o"."status" = 'paid'
  ) AS "ranked"
  WHERE
    "rn" = 1
), "top1" AS (
  SELECT
    "customer_id",
    "value"
  FROM (
    SELECT
      "o"."customer_id" AS "customer_id",
      "o"."channel" AS "value",
      ROW_NUMBER() OVER (
        PARTITION BY "o"."customer_id"
        ORDER BY "o"."created_at" DESC NULLS LAST, (
          COALESCE("o"."id", '')
        ) COLLATE "C", "o"."channel" COLLATE "C"
      ) AS "rn"
    FROM "vo" AS "o"
    WHERE
      NOT "o"."created_at" IS NULL AND NOT "o"."channel" IS NULL
  ) AS "ranked"
  WHERE
    "rn" = 1
), "others" AS (
  SELECT
    "customer_id" AS "customer_id"
  FROM (
    SELECT
      "customer_id"
    FROM "vo"
    UNION
    SELECT
      "customer_id"
    FROM "ve"
  ) AS "u"
)
SELECT
  COALESCE("c"."id", "top0"."customer_id", "top1"."customer_id", "others"."customer_id") AS "customer_id"
FROM "customers" AS "c"
FULL JOIN "top0"
  ON "top0"."customer_id" = "c"."id"
FULL JOIN "top1"
  ON "top1"."customer_id" = COALESCE("c"."id", "top0"."customer_id")
FULL JOIN "others"
  ON "others"."customer_id" = COALESCE("c"."id", "top0"."customer_id", "top1"."customer_id")
WHERE
  NOT COALESCE("c"."id", "top0"."customer_id", "top1"."customer_id", "others"."customer_id") IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
  )
  AND (
    (
      CAST(GET_BYTE(SHA256(CONVERT_TO((
        'ab:' || "c"."id"
      ), 'UTF8')), 0) AS BIGINT) * 16777216 + CAST(GET_BYTE(SHA256(CONVERT_TO((
        'ab:' || "c"."id"
      ), 'UTF8')), 1) AS BIGINT) * 65536 + CAST(GET_BYTE(SHA256(CONVERT_TO((
        'ab:' || "c"."id"
      ), 'UTF8')), 2) AS BIGINT) * 256 + CAST(GET_BYTE(SHA256(CONVERT_TO((
        'ab:' || "c"."id"
      ), 'UTF8')), 3) AS BIGINT) * 1
    ) % 3 = 0
    AND (
      CAST(CASE
        WHEN MAKE_DATE(
          2026,
          CAST(EXTRACT(MONTH FROM CAST("c"."birthday" AS DATE)) AS INT),
          CASE
            WHEN CAST(EXTRACT(MONTH FROM CAST("c"."birthday" AS DATE)) AS INT) = 2
            AND CAST(EXTRACT(DAY FROM CAST("c"."birthday" AS DATE)) AS INT) = 29
            THEN 28
            ELSE CAST(EXTRACT(DAY FROM CAST("c"."birthday" AS DATE)) AS INT)
          END
        ) < CAST('2026-06-30' AS DATE)
        THEN MAKE_DATE(
          2027,
          CAST(EXTRACT(MONTH FROM CAST("c"."birthday" AS DATE)) AS INT),
          CASE
            WHEN CAST(EXTRACT(MONTH FROM CAST("c"."birthday" AS DATE)) AS INT) = 2
            AND CAST(EXTRACT(DAY FROM CAST("c"."birthday" AS DATE)) AS INT) = 29
            THEN 28
            ELSE CAST(EXTRACT(DAY FROM CAST("c"."birthday" AS DATE)) AS INT)
          END
        )
        ELSE MAKE_DATE(
          2026,
          CAST(EXTRACT(MONTH FROM CAST("c"."birthday" AS DATE)) AS INT),
          CASE
            WHEN CAST(EXTRACT(MONTH FROM CAST("c"."birthday" AS DATE)) AS INT) = 2
            AND CAST(EXTRACT(DAY FROM CAST("c"."birthday" AS DATE)) AS INT) = 29
            THEN 28
            ELSE CAST(EXTRACT(DAY FROM CAST("c"."birthday" AS DATE)) AS INT)
          END
        )
      END AS DATE) - CAST('2026-06-30' AS DATE)
    ) < 7
    AND 63 <= 30
    AND "top0"."value" > 100
    AND "top1"."value" = 'app'
  )
