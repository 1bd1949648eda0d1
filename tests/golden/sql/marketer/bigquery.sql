WITH `vo` AS (
  SELECT
    *
  FROM `orders` AS `o`
  WHERE
    `o`.`created_at` IS NULL
    OR `o`.`created_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
), `ve` AS (
  SELECT
    *
  FROM `events` AS `e`
  WHERE
    `e`.`at` IS NULL OR `e`.`at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
), `top0` AS (
  SELECT
    `customer_id`,
    `value`
  FROM (
    SELECT
      `o`.`customer_id` AS `customer_id`,
      `o`.`total` AS `value`,
      ROW_NUMBER() OVER (
        PARTITION BY `o`.`customer_id`
        ORDER BY `o`.`created_at` ASC NULLS LAST, COALESCE(`o`.`id`, '') NULLS LAST, `o`.`total` NULLS LAST
      ) AS `rn`
    FROM `vo` AS `o`
    WHERE
      NOT `o`.`created_at` IS NULL AND NOT `o`.`total` IS NULL AND `o`.`status` = 'paid'
  ) AS `ranked`
  WHERE
    `rn` = 1
), `top1` AS (
  SELECT
    `customer_id`,
    `value`
  FROM (
    SELECT
      `o`.`customer_id` AS `customer_id`,
      `o`.`channel` AS `value`,
      ROW_NUMBER() OVER (
        PARTITION BY `o`.`customer_id`
        ORDER BY `o`.`created_at` DESC, COALESCE(`o`.`id`, '') NULLS LAST, `o`.`channel` NULLS LAST
      ) AS `rn`
    FROM `vo` AS `o`
    WHERE
      NOT `o`.`created_at` IS NULL AND NOT `o`.`channel` IS NULL
  ) AS `ranked`
  WHERE
    `rn` = 1
), `others` AS (
  SELECT
    `customer_id` AS `customer_id`
  FROM (
    SELECT
      `customer_id`
    FROM `vo`
    UNION DISTINCT
    SELECT
      `customer_id`
    FROM `ve`
  ) AS `u`
)
SELECT
  COALESCE(`c`.`id`, `top0`.`customer_id`, `top1`.`customer_id`, `others`.`customer_id`) AS `customer_id`
FROM `customers` AS `c`
FULL JOIN `top0`
  ON `top0`.`customer_id` = `c`.`id`
FULL JOIN `top1`
  ON `top1`.`customer_id` = COALESCE(`c`.`id`, `top0`.`customer_id`)
FULL JOIN `others`
  ON `others`.`customer_id` = COALESCE(`c`.`id`, `top0`.`customer_id`, `top1`.`customer_id`)
WHERE
  NOT COALESCE(`c`.`id`, `top0`.`customer_id`, `top1`.`customer_id`, `others`.`customer_id`) IS NULL
  AND (
    `c`.`registered_at` IS NULL
    OR `c`.`registered_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
  )
  AND (
    MOD(
      CAST(CONCAT('0x', SUBSTR(TO_HEX(SHA256((
        'ab:' || `c`.`id`
      ))), 1, 8)) AS INT64),
      3
    ) = 0
    AND DATE_DIFF(
      CAST(CASE
        WHEN DATE(
          2026,
          EXTRACT(MONTH FROM CAST(`c`.`birthday` AS DATE)),
          CASE
            WHEN EXTRACT(MONTH FROM CAST(`c`.`birthday` AS DATE)) = 2
            AND EXTRACT(DAY FROM CAST(`c`.`birthday` AS DATE)) = 29
            THEN 28
            ELSE EXTRACT(DAY FROM CAST(`c`.`birthday` AS DATE))
          END
        ) < CAST('2026-06-30' AS DATE)
        THEN DATE(
          2027,
          EXTRACT(MONTH FROM CAST(`c`.`birthday` AS DATE)),
          CASE
            WHEN EXTRACT(MONTH FROM CAST(`c`.`birthday` AS DATE)) = 2
            AND EXTRACT(DAY FROM CAST(`c`.`birthday` AS DATE)) = 29
            THEN 28
            ELSE EXTRACT(DAY FROM CAST(`c`.`birthday` AS DATE))
          END
        )
        ELSE DATE(
          2026,
          EXTRACT(MONTH FROM CAST(`c`.`birthday` AS DATE)),
          CASE
            WHEN EXTRACT(MONTH FROM CAST(`c`.`birthday` AS DATE)) = 2
            AND EXTRACT(DAY FROM CAST(`c`.`birthday` AS DATE)) = 29
            THEN 28
            ELSE EXTRACT(DAY FROM CAST(`c`.`birthday` AS DATE))
          END
        )
      END AS DATE),
      CAST('2026-06-30' AS DATE),
      DAY
    ) < 7
    AND 63 <= 30
    AND `top0`.`value` > 100
    AND `top1`.`value` = 'app'
  )
